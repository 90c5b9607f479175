//! What `read` makes of the `vm!` input, and what `check` and `expand` take:
//! each key's value as a literal already read (a string's text, a pair
//! split, a number parsed) or an expression left to rustc and run time.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Expr, Ident, LitBool, LitInt, LitStr};

use monocore_rules::Field as Key;
use monocore_rules::egress::EgressRule;

/// A value checked at compile time (a literal) or left to run time (any other
/// expression).
pub enum Value<T> {
    /// A literal, read.
    Lit(T),
    /// An expression: its type is checked by rustc, its value at run time.
    Expr(Expr),
    /// A list element that is neither: already reported, never expanded.
    Invalid,
}

/// A list value: an array literal whose elements are each checked (or left to
/// run time if they are expressions), or an expression yielding the elements.
pub enum List<T> {
    /// `[a, b, …]`.
    Items(Vec<Value<T>>),
    /// Any expression that is `IntoIterator` of the element type.
    Expr(Expr),
}

/// The literal of a `Value`, if it is one.
pub fn lit<T>(value: Option<&Value<T>>) -> Option<&T> {
    match value {
        Some(Value::Lit(lit)) => Some(lit),
        _ => None,
    }
}

/// A string literal and its text (unescaped once, when read).
pub struct StrLit {
    /// The literal, for its span and its expansion.
    pub lit: LitStr,
    /// Its text.
    pub text: String,
}

impl StrLit {
    /// Reads `lit`.
    pub fn new(lit: &LitStr) -> Self {
        Self {
            lit: lit.clone(),
            text: lit.value(),
        }
    }
}

impl ToTokens for StrLit {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.lit.to_tokens(tokens);
    }
}

/// A `host:guest` path pair literal, already split.
pub struct PathLit {
    /// The literal, for its span.
    pub span: Span,
    /// The host side.
    pub host: String,
    /// The guest side.
    pub guest: String,
}

/// A `host:guest` port pair literal, already parsed.
pub struct PortLit {
    /// The literal, for its span.
    pub span: Span,
    /// The host port.
    pub host: u16,
    /// The guest port.
    pub guest: u16,
}

/// An allow-list entry literal (`HOST:PORT`), already parsed.
pub struct AllowLit {
    /// The literal, for its span.
    pub span: Span,
    /// The entry.
    pub rule: EgressRule,
}

/// A `NAME=value` literal, already split.
pub struct EnvLit {
    /// The literal, for its span.
    pub span: Span,
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A `RLIMIT_X=soft:hard` literal, already parsed.
pub struct RlimitLit {
    /// The resource number.
    pub number: u32,
    /// The resource's variant name, spanned on the literal.
    pub resource: Ident,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// An IPv4 address literal, already parsed.
pub struct IpLit {
    /// The literal, for its span.
    pub span: Span,
    /// The four octets.
    pub octets: [u8; 4],
}

/// Where a list item's literal is, for errors about that item.
pub trait ItemSpan {
    /// The literal's span.
    fn span(&self) -> Span;
}

impl ItemSpan for StrLit {
    fn span(&self) -> Span {
        self.lit.span()
    }
}

impl ItemSpan for PathLit {
    fn span(&self) -> Span {
        self.span
    }
}

impl ItemSpan for PortLit {
    fn span(&self) -> Span {
        self.span
    }
}

impl ItemSpan for AllowLit {
    fn span(&self) -> Span {
        self.span
    }
}

impl ItemSpan for EnvLit {
    fn span(&self) -> Span {
        self.span
    }
}

impl ItemSpan for RlimitLit {
    fn span(&self) -> Span {
        self.resource.span()
    }
}

/// Where the guest's root filesystem comes from.
pub enum Source {
    /// `root: "./rootfs"`: a host directory.
    Root(Value<StrLit>),
    /// `image: "alpine:3.20"`: an OCI image, pulled at run time (the
    /// literal is checked as a reference when read).
    Image(Value<StrLit>),
}

/// The checked input: what `expand` turns into a `MicroVmConfig` (or, with
/// `image`, a `monocore::image::ImageVmConfig`).
pub struct Checked {
    pub source: Source,
    pub ram: Value<LitInt>,
    /// The optional keys, as they were read.
    pub optional: Optional,
}

/// The optional keys, as they are read one by one (`None`: not given, or
/// given and already reported), and every given value's tokens.
#[derive(Default)]
pub struct Optional {
    pub vcpus: Option<Value<LitInt>>,
    pub exec: Option<Value<StrLit>>,
    pub args: Option<List<StrLit>>,
    pub env: Option<List<EnvLit>>,
    pub workdir: Option<Value<StrLit>>,
    pub mapped_dirs: Option<List<PathLit>>,
    pub port_map: Option<List<PortLit>>,
    pub net: Option<Value<LitBool>>,
    pub allow: Option<List<AllowLit>>,
    pub rlimits: Option<List<RlimitLit>>,
    pub console: Option<Value<StrLit>>,
    pub ip: Option<Value<IpLit>>,
    pub local_only: Option<Value<LitBool>>,
    pub log_level: Option<Value<Ident>>,
    /// Each given key's value, as tokens (`root` and `ram` too).
    pub values: Vec<(Key, TokenStream)>,
}

impl Optional {
    /// The tokens of `field`'s value, if it was given.
    pub fn value_of(&self, field: Key) -> Option<&TokenStream> {
        self.values.iter().find(|v| v.0 == field).map(|v| &v.1)
    }

    /// Whether `field` was given (read or not).
    pub fn given(&self, field: Key) -> bool {
        self.value_of(field).is_some()
    }

    /// The span of item `index` of list `field`, if that item is a literal.
    pub fn item_span(&self, field: Key, index: usize) -> Option<Span> {
        fn of<T: ItemSpan>(list: Option<&List<T>>, index: usize) -> Option<Span> {
            match list {
                Some(List::Items(items)) => lit(items.get(index)).map(ItemSpan::span),
                _ => None,
            }
        }
        match field {
            Key::Args => of(self.args.as_ref(), index),
            Key::Env => of(self.env.as_ref(), index),
            Key::MappedDirs => of(self.mapped_dirs.as_ref(), index),
            Key::PortMap => of(self.port_map.as_ref(), index),
            Key::Allow => of(self.allow.as_ref(), index),
            Key::Rlimits => of(self.rlimits.as_ref(), index),
            _ => None,
        }
    }
}
