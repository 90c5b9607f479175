//! Compile-time validation of the `vm!` input.
//!
//! This module reads the input: keys, the shape of each value, and the
//! string forms of list elements (path and port pairs, env entries,
//! rlimits), which it parses with `monocore_rules`' parsers. The rules over
//! the values are applied by [`super::rules`], with the same functions that
//! `MicroVmConfig::validate` calls at run time; neither module restates a
//! rule.
//!
//! Errors are collected, not returned at the first (serde_derive's `Ctxt`
//! pattern), so one build shows every mistake.
//!
//! Plain Rust over `proc_macro2` and `syn`, like `parse`: fuzzable from an
//! ordinary crate.

use std::fmt::Display;
use std::net::Ipv4Addr;

use monocore_rules::keys::{closest, suggest_key, unknown_key_message};
use monocore_rules::{
    Field as Key, LOG_LEVEL_NAMES, RuleError, check_num_vcpus, check_ram_mib, log_level_number,
    max_len, parse_env_pair, parse_path_pair, parse_port_pair, parse_rlimit, rlimit_name,
};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Expr, ExprArray, Ident, Lit, LitBool, LitInt, LitStr, UnOp};

use super::parse::{Field, VmInput};

/// The error collector (serde_derive's `Ctxt`): every error is kept and they
/// are combined into one `syn::Error` at the end.
#[derive(Default)]
pub struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records an error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error spanning `tokens`.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// `Err` with every recorded error, or `Ok(value)` if there were none.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

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

/// Where the guest's root filesystem comes from.
pub enum Source {
    /// `root: "./rootfs"`: a host directory.
    Root(Value<LitStr>),
    /// `image: "alpine:3.20"`: an OCI image, pulled at run time (the
    /// literal is checked as a reference here).
    Image(Value<LitStr>),
}

/// The checked input: what `expand` turns into a `MicroVmConfig` (or, with
/// `image`, a `monocore::image::ImageVmConfig`).
pub struct Checked {
    pub source: Source,
    pub ram: Value<LitInt>,
    /// The optional keys, as they were read.
    pub optional: Optional,
}

/// Checks the whole input, reporting every error at once.
pub fn check(input: VmInput) -> syn::Result<Checked> {
    let mut errors = Errors::default();
    let mut seen: Vec<Ident> = Vec::new();
    // Keys suggested for unknown keys: a required key suggested this way is
    // not reported missing as well.
    let mut suggested: Vec<&str> = Vec::new();
    let mut root = None;
    let mut image: Option<(Ident, Option<Value<LitStr>>)> = None;
    let mut ram = None;
    let mut c = Optional::default();
    for Field { key, value } in input.fields {
        let name = key.to_string();
        if let Some(first) = seen.iter().find(|k| **k == key) {
            errors.spanned(
                &key,
                format!("duplicate key `{name}`: each key may be given once; remove one of them"),
            );
            errors.spanned(first, format!("`{name}` is first given here"));
            continue;
        }
        // `image` is `vm!`'s own key: it makes an `ImageVmConfig`, which
        // has no `root` yet (the image's private root is made at run time).
        if name == IMAGE_KEY {
            image = Some((key.clone(), image_ref(&mut errors, value)));
            seen.push(key);
            continue;
        }
        let Some(field) = Key::from_key(&name) else {
            errors.spanned(&key, unknown_key_message(&name));
            suggested.extend(suggest_key(&name));
            continue;
        };
        c.values.push((field, value.to_token_stream()));
        let e = &mut errors;
        match field {
            Key::Root => root = string(e, &name, value),
            Key::Ram => ram = integer(e, &name, value, "a number of MiB", check_ram_mib),
            Key::Vcpus => c.vcpus = integer(e, &name, value, "a number of vCPUs", check_num_vcpus),
            Key::Exec => c.exec = string(e, &name, value),
            Key::Workdir => c.workdir = string(e, &name, value),
            Key::Console => c.console = string(e, &name, value),
            Key::Ip => c.ip = ip(e, value),
            Key::LocalOnly => c.local_only = boolean(e, &name, value),
            Key::LogLevel => c.log_level = log_level(e, value),
            Key::Args => c.args = list(e, field, value, arg),
            Key::Env => c.env = list(e, field, value, env),
            Key::MappedDirs => c.mapped_dirs = list(e, field, value, path_pair),
            Key::PortMap => c.port_map = list(e, field, value, port_pair),
            Key::Rlimits => c.rlimits = list(e, field, value, rlimit),
        }
        seen.push(key);
    }
    super::rules::check(&mut errors, root.as_ref(), image.is_some(), &c);
    if let (Some((image_key, _)), Some(root_key)) = (&image, seen.iter().find(|k| *k == "root")) {
        errors.spanned(
            image_key,
            "`image` and `root` are alternatives: give the guest's root filesystem one way",
        );
        errors.spanned(root_key, "`root` is given here");
    }
    for (required, example) in [
        (
            "root",
            "`root: \"./rootfs\"`, the host directory holding the guest's root filesystem (or `image: \"alpine:3.20\"`, an OCI image)",
        ),
        ("ram", "`ram: 512`, the guest memory in MiB"),
    ] {
        let given = seen.iter().any(|k| k == required) || (required == "root" && image.is_some());
        if !given && !suggested.contains(&required) {
            errors.at(
                Span::call_site(),
                format!("missing key `{required}`: add {example}"),
            );
        }
    }
    let source = match (root, image) {
        (Some(root), None) => Some(Source::Root(root)),
        (None, Some((_, Some(image)))) => Some(Source::Image(image)),
        _ => None,
    };
    let (Some(source), Some(ram)) = (source, ram) else {
        // An error was recorded for each missing or invalid required key.
        return Err(errors.finish(()).err().unwrap_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "`vm!` needs valid `root` (or `image`) and `ram` values",
            )
        }));
    };
    errors.finish(Checked {
        source,
        ram,
        optional: c,
    })
}

/// The optional keys, as they are read one by one, and every value's tokens
/// (for errors about a whole value).
#[derive(Default)]
pub struct Optional {
    pub vcpus: Option<Value<LitInt>>,
    pub exec: Option<Value<LitStr>>,
    pub args: Option<List<LitStr>>,
    pub env: Option<List<EnvLit>>,
    pub workdir: Option<Value<LitStr>>,
    pub mapped_dirs: Option<List<PathLit>>,
    pub port_map: Option<List<PortLit>>,
    pub rlimits: Option<List<RlimitLit>>,
    pub console: Option<Value<LitStr>>,
    pub ip: Option<Value<IpLit>>,
    pub local_only: Option<Value<LitBool>>,
    pub log_level: Option<Value<Ident>>,
    /// Each given key's value, as tokens.
    pub values: Vec<(Key, TokenStream)>,
}

impl Optional {
    /// The tokens of `field`'s value, if it was given.
    pub fn value_of(&self, field: Key) -> Option<&TokenStream> {
        self.values.iter().find(|v| v.0 == field).map(|v| &v.1)
    }
}

// ---- value shapes -----------------------------------------------------------

/// What kind of value an expression is, as far as the macro can tell.
enum Shape<'a> {
    Str(&'a LitStr),
    Int(&'a LitInt),
    Bool(&'a LitBool),
    /// A negative integer literal (`-1`).
    NegInt,
    /// Any other literal (float, char, byte string …).
    OtherLit(&'static str),
    Array(&'a ExprArray),
    /// Anything else: left to rustc and to run-time validation.
    Expr,
}

fn shape(expr: &Expr) -> Shape<'_> {
    match expr {
        // Invisible groups come from `macro_rules!` fragments (`$e:expr`).
        Expr::Group(group) => shape(&group.expr),
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Shape::Str(s),
            Lit::Int(i) => Shape::Int(i),
            Lit::Bool(b) => Shape::Bool(b),
            Lit::Float(_) => Shape::OtherLit("a floating-point number"),
            Lit::Char(_) => Shape::OtherLit("a character"),
            Lit::Byte(_) => Shape::OtherLit("a byte"),
            Lit::ByteStr(_) => Shape::OtherLit("a byte string"),
            Lit::CStr(_) => Shape::OtherLit("a C string"),
            _ => Shape::OtherLit("a literal"),
        },
        Expr::Unary(unary)
            if matches!(unary.op, UnOp::Neg(_))
                && matches!(shape(&unary.expr), Shape::Int(_) | Shape::OtherLit(_)) =>
        {
            Shape::NegInt
        }
        Expr::Array(array) => Shape::Array(array),
        _ => Shape::Expr,
    }
}

fn found(shape: &Shape<'_>) -> &'static str {
    match shape {
        Shape::Str(_) => "a string",
        Shape::Int(_) => "an integer",
        Shape::Bool(_) => "a boolean",
        Shape::NegInt => "a negative number",
        Shape::OtherLit(what) => what,
        Shape::Array(_) => "a list",
        Shape::Expr => "an expression",
    }
}

fn wrong_type(errors: &mut Errors, value: &Expr, key: &str, expected: &str, hint: &str) {
    let found = found(&shape(value));
    errors.spanned(
        value,
        format!("wrong type for `{key}`: expected {expected}, found {found}{hint}"),
    );
}

// ---- scalar keys --------------------------------------------------------------

/// The key of an OCI image, `vm!`'s alternative to `root`.
pub const IMAGE_KEY: &str = "image";

/// An `image` value: a string literal that parses as an image reference
/// (with the parser the library uses at run time), or an expression.
fn image_ref(errors: &mut Errors, value: Expr) -> Option<Value<LitStr>> {
    let checked = string(errors, IMAGE_KEY, value)?;
    if let Value::Lit(lit) = &checked
        && let Err(e) = monocore_rules::parse_image_ref(&lit.value())
    {
        errors.spanned(lit, e);
        return None;
    }
    Some(checked)
}

fn string(errors: &mut Errors, key: &str, value: Expr) -> Option<Value<LitStr>> {
    match shape(&value) {
        Shape::Str(lit) => Some(Value::Lit(lit.clone())),
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Array(_) => {
            wrong_type(
                errors,
                &value,
                key,
                "a string",
                ": give one string, not a list",
            );
            None
        }
        _ => {
            wrong_type(
                errors,
                &value,
                key,
                "a string",
                ": put the value in double quotes",
            );
            None
        }
    }
}

fn integer<T>(
    errors: &mut Errors,
    key: &str,
    value: Expr,
    expected: &str,
    rule: fn(i128) -> Result<T, monocore_rules::RangeError>,
) -> Option<Value<LitInt>> {
    match shape(&value) {
        Shape::Int(lit) => {
            let checked = lit
                .base10_parse::<i128>()
                .map_err(|e| e.to_string())
                .and_then(|n| rule(n).map_err(|e| e.to_string()));
            match checked {
                Ok(_) => Some(Value::Lit(lit.clone())),
                Err(message) => {
                    errors.spanned(lit, message);
                    None
                }
            }
        }
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) => {
            let text = lit.value();
            let hint = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                format!(": write `{text}` without quotes")
            } else {
                String::new()
            };
            wrong_type(errors, &value, key, expected, &hint);
            None
        }
        Shape::NegInt => {
            wrong_type(errors, &value, key, expected, ": it must be at least 1");
            None
        }
        _ => {
            wrong_type(errors, &value, key, expected, "");
            None
        }
    }
}

fn boolean(errors: &mut Errors, key: &str, value: Expr) -> Option<Value<LitBool>> {
    match shape(&value) {
        Shape::Bool(lit) => Some(Value::Lit(lit.clone())),
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) if matches!(lit.value().as_str(), "true" | "false") => {
            let hint = format!(": write `{}` without quotes", lit.value());
            wrong_type(errors, &value, key, "`true` or `false`", &hint);
            None
        }
        _ => {
            wrong_type(errors, &value, key, "`true` or `false`", "");
            None
        }
    }
}

/// The `LogLevel` variant name of a level number (`3` → `Info`).
fn level_variant(number: u32) -> Option<String> {
    let name = LOG_LEVEL_NAMES.get(usize::try_from(number).ok()?)?;
    let mut chars = name.chars();
    let first = chars.next()?;
    Some(first.to_ascii_uppercase().to_string() + chars.as_str())
}

fn level_variants() -> String {
    let all: Vec<String> = (0..6u32)
        .filter_map(level_variant)
        .map(|v| format!("`{v}`"))
        .collect();
    all.join(", ")
}

fn log_level(errors: &mut Errors, value: Expr) -> Option<Value<Ident>> {
    let key = "log_level";
    if let Expr::Path(path) = &value
        && path.qself.is_none()
        && let Some(ident) = path.path.get_ident()
    {
        let name = ident.to_string();
        // A capitalized identifier names a level; a lowercase one is a
        // variable, whose value is checked by its type.
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return match log_level_number(&name).and_then(level_variant) {
                Some(variant) => Some(Value::Lit(Ident::new(&variant, ident.span()))),
                None => {
                    let variants: Vec<String> = (0..6u32).filter_map(level_variant).collect();
                    let hint = closest(&name, variants.iter().map(String::as_str))
                        .map(|v| format!(": did you mean `{v}`?"))
                        .unwrap_or_else(|| format!(": expected one of {}", level_variants()));
                    errors.spanned(ident, format!("unknown log level `{name}`{hint}"));
                    None
                }
            };
        }
        return Some(Value::Expr(value));
    }
    match shape(&value) {
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) => {
            let hint = match log_level_number(&lit.value()).and_then(level_variant) {
                Some(variant) => format!(": write `{variant}` without quotes"),
                None => format!(": one of {}", level_variants()),
            };
            wrong_type(errors, &value, key, "an identifier such as `Info`", &hint);
            None
        }
        _ => {
            let hint = format!(": one of {}", level_variants());
            wrong_type(errors, &value, key, "an identifier such as `Info`", &hint);
            None
        }
    }
}

fn ip(errors: &mut Errors, value: Expr) -> Option<Value<IpLit>> {
    match shape(&value) {
        Shape::Str(lit) => match lit.value().parse::<Ipv4Addr>() {
            // The same parser as `Ipv4Addr`'s `FromStr`, which the run-time
            // config (serde) uses: there is no second IPv4 rule to drift.
            Ok(addr) => Some(Value::Lit(IpLit {
                span: lit.span(),
                octets: addr.octets(),
            })),
            Err(_) => {
                errors.spanned(
                    lit,
                    format!(
                        "invalid `ip`: {:?} is not an IPv4 address: expected four numbers from 0 to 255 separated by dots, such as \"10.0.0.2\"",
                        lit.value()
                    ),
                );
                None
            }
        },
        Shape::Expr => Some(Value::Expr(value)),
        _ => {
            wrong_type(
                errors,
                &value,
                "ip",
                "an IPv4 address string such as \"10.0.0.2\"",
                "",
            );
            None
        }
    }
}

// ---- list keys ----------------------------------------------------------------

fn list<T>(
    errors: &mut Errors,
    field: Key,
    value: Expr,
    element: fn(&LitStr) -> Result<T, String>,
) -> Option<List<T>> {
    let key = field.key();
    let array = match shape(&value) {
        Shape::Array(array) => array,
        Shape::Expr => return Some(List::Expr(value)),
        Shape::Str(lit) => {
            let hint = format!(": put it in brackets, `[{}]`", lit.to_token_stream());
            wrong_type(errors, &value, key, "a list", &hint);
            return None;
        }
        _ => {
            wrong_type(errors, &value, key, "a list", "");
            return None;
        }
    };
    // Bounded cost: a list over the most any config allows is reported,
    // not walked. (`rules` checks the length again once `local_only` is
    // known.)
    let count = array.elems.len();
    if let Some(max) = max_len(field, false)
        && count > max
    {
        errors.spanned(
            array,
            super::rules::message(&RuleError::TooMany { field, count, max }),
        );
        return None;
    }
    let mut items = Vec::with_capacity(count);
    for elem in &array.elems {
        match shape(elem) {
            Shape::Str(lit) => match element(lit) {
                Ok(item) => items.push(Value::Lit(item)),
                Err(message) => {
                    errors.spanned(lit, message);
                    items.push(Value::Invalid);
                }
            },
            Shape::Expr => items.push(Value::Expr(elem.clone())),
            _ => {
                wrong_type(
                    errors,
                    elem,
                    key,
                    "a string for each element",
                    ": put the value in double quotes",
                );
                items.push(Value::Invalid);
            }
        }
    }
    Some(List::Items(items))
}

fn arg(lit: &LitStr) -> Result<LitStr, String> {
    Ok(lit.clone())
}

fn env(lit: &LitStr) -> Result<EnvLit, String> {
    let text = lit.value();
    let (name, value) = parse_env_pair(&text).map_err(|e| e.to_string())?;
    Ok(EnvLit {
        span: lit.span(),
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

fn path_pair(lit: &LitStr) -> Result<PathLit, String> {
    let text = lit.value();
    let (host, guest) = parse_path_pair(&text).map_err(|e| e.to_string())?;
    Ok(PathLit {
        span: lit.span(),
        host: host.to_owned(),
        guest: guest.to_owned(),
    })
}

fn port_pair(lit: &LitStr) -> Result<PortLit, String> {
    let (host, guest) = parse_port_pair(&lit.value()).map_err(|e| e.to_string())?;
    Ok(PortLit {
        span: lit.span(),
        host,
        guest,
    })
}

fn rlimit(lit: &LitStr) -> Result<RlimitLit, String> {
    let (resource, soft, hard) = parse_rlimit(&lit.value()).map_err(|e| e.to_string())?;
    let name = rlimit_name(resource).ok_or_else(|| format!("unknown resource {resource}"))?;
    Ok(RlimitLit {
        number: resource,
        resource: Ident::new(name, lit.span()),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use monocore_rules::limits;
    use quote::quote;

    fn errors_of(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let input: VmInput = syn::parse2(tokens).unwrap();
        match check(input) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_input_has_no_errors() {
        assert!(errors_of(quote!(root: "r", ram: 1)).is_empty());
        assert!(errors_of(quote!(root: r, ram: n, log_level: Info, ip: ip)).is_empty());
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errors = errors_of(quote!(ram: 0, vcpus: 256, rma: 1, exec: "a\0b"));
        assert!(
            errors.iter().any(|e| e.contains("ram (MiB) is 0")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("vcpus is 256")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("did you mean `ram`?")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("holds a NUL byte")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("missing key `root`")),
            "{errors:?}"
        );
    }

    /// Regression (found by the `vm_macro` fuzz target): `args` without
    /// `exec` compiled, giving a config that `validate` always rejects.
    #[test]
    fn literal_args_need_exec() {
        assert_eq!(
            errors_of(quote!(root: "r", ram: 1, args: ["a"])),
            [
                "1 argument(s) given without an exec path: they have no program to run; add `exec`, the program to run"
            ]
        );
        assert!(errors_of(quote!(root: "r", ram: 1, args: ["a"], exec: "/bin/echo")).is_empty());
        assert!(errors_of(quote!(root: "r", ram: 1, exec: e, args: ["a"])).is_empty());
        // Nothing to drop: an empty list, or an expression checked at run time.
        assert!(errors_of(quote!(root: "r", ram: 1, args: [])).is_empty());
        assert!(errors_of(quote!(root: "r", ram: 1, args: list)).is_empty());
    }

    #[test]
    fn duplicates_point_at_both_places() {
        let errors = errors_of(quote!(root: "r", ram: 1, ram: 2));
        assert_eq!(
            errors,
            [
                "duplicate key `ram`: each key may be given once; remove one of them",
                "`ram` is first given here"
            ]
        );
        let errors = errors_of(
            quote!(root: "r", ram: 1, local_only: false, port_map: ["80", "8080:80", "80:81"]),
        );
        assert_eq!(
            errors,
            [
                "guest port 80 is mapped twice: each guest port may be mapped once (libkrun refuses two host ports for one guest port)",
                "guest port 80 is first mapped here",
                "host port 80 is mapped twice: each host port may be mapped once",
                "host port 80 is first mapped here",
            ]
        );
    }

    #[test]
    fn log_level_identifiers_are_checked_and_variables_are_not() {
        assert!(errors_of(quote!(root: "r", ram: 1, log_level: level)).is_empty());
        assert!(errors_of(quote!(root: "r", ram: 1, log_level: LogLevel::Info)).is_empty());
        let errors = errors_of(quote!(root: "r", ram: 1, log_level: Infoo));
        assert_eq!(errors, ["unknown log level `Infoo`: did you mean `Info`?"]);
    }

    /// `root: "r", ram: 1, <key>: [<n> string literals]` as tokens.
    fn with_list(
        key: &str,
        n: usize,
        element: impl Fn(usize) -> String,
    ) -> proc_macro2::TokenStream {
        let key = proc_macro2::Ident::new(key, Span::call_site());
        let elements = (0..n).map(|i| proc_macro2::Literal::string(&element(i)));
        quote!(root: "r", ram: 1, exec: "/x", #key: [#(#elements),*])
    }

    /// `root: "r", ram: 1, <key>: [<n> string literals]`, built as a syntax
    /// tree directly: parsing 100k tokens with syn in a debug build takes
    /// seconds, and is rustc's (linear) cost, not the macro's.
    fn input_with_list(key: &str, n: usize) -> VmInput {
        let lit = |s: &str| -> Expr {
            Expr::Lit(syn::ExprLit {
                attrs: Vec::new(),
                lit: Lit::Str(LitStr::new(s, Span::call_site())),
            })
        };
        let mut input: VmInput = syn::parse2(quote!(root: "r", ram: 1)).unwrap();
        let elems = (0..n).map(|i| lit(&format!("/d{i}"))).collect();
        input.fields.push(Field {
            key: Ident::new(key, Span::call_site()),
            value: Expr::Array(ExprArray {
                attrs: Vec::new(),
                bracket_token: Default::default(),
                elems,
            }),
        });
        input
    }

    #[test]
    fn a_hundred_thousand_element_list_is_too_many_not_a_hang() {
        for (key, n, max) in [
            ("mapped_dirs", 100_000, limits::max_mapped_dirs(false)),
            (
                "port_map",
                limits::MAX_PORT_MAPPINGS + 1,
                limits::MAX_PORT_MAPPINGS,
            ),
            ("args", limits::MAX_ARGS + 1, limits::MAX_ARGS),
            ("env", limits::MAX_ENV_VARS + 1, limits::MAX_ENV_VARS),
            ("rlimits", limits::MAX_RLIMITS + 1, limits::MAX_RLIMITS),
        ] {
            let input = input_with_list(key, n);
            let start = std::time::Instant::now();
            let errors: Vec<String> = match check(input) {
                Ok(_) => Vec::new(),
                Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
            };
            let elapsed = start.elapsed();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].starts_with(&format!("too many {key}: {n} given, at most {max} allowed")),
                "{errors:?}"
            );
            // Includes dropping the 100k-element tree.
            assert!(
                elapsed < std::time::Duration::from_millis(500),
                "{key}: {elapsed:?}"
            );
        }
    }

    #[test]
    fn an_overlong_literal_is_an_error_that_does_not_echo_it() {
        // Any literal over the limit takes the same path as a 10 MB one (which
        // only makes syn's unescaping, in a debug build, slow).
        let len = limits::MAX_STRING_LEN + 1;
        let tokens = with_list("args", 1, |_| "a".repeat(len));
        let errors = errors_of(tokens);
        assert_eq!(
            errors.len(),
            1,
            "{:?}",
            errors.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(
            errors[0],
            format!(
                "{} bytes is too long: at most {} bytes are allowed",
                len,
                limits::MAX_STRING_LEN
            )
        );
    }

    #[test]
    fn the_command_is_bounded_as_execve_counts_it() {
        // `exec: "/x"` and one argument, each with its NUL and pointer.
        let room = limits::command_space(None);
        let fits = room - (2 + 9) - 9;
        assert!(
            errors_of(with_list("args", 1, |_| "a".repeat(fits))).is_empty()
                || fits > limits::MAX_STRING_LEN
        );
        let n = room / (limits::MAX_STRING_LEN + 9) + 1;
        let errors = errors_of(with_list("args", n, |_| "a".repeat(limits::MAX_STRING_LEN)));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("the command (exec path, arguments and environment) takes"),
            "{errors:?}"
        );
        // Unknown limits (an expression) give the most room, never a false error.
        let mut tokens = with_list("args", n, |_| "a".repeat(limits::MAX_STRING_LEN));
        tokens.extend(quote!(, rlimits: limits));
        assert!(errors_of(tokens).is_empty());
    }

    #[test]
    fn rules_that_need_other_keys_use_their_literals() {
        let errors = errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("port mapping 8080:80 needs networking"),
            "{errors:?}"
        );
        assert!(
            errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"], local_only: false))
                .is_empty()
        );
        assert!(
            errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"], local_only: l)).is_empty()
        );
        let dirs = |n: usize| (0..n).map(|i| format!("/h:/m{i}")).collect::<Vec<_>>();
        // Networking shares the vsock device: as many dirs with it as without.
        let max = dirs(limits::max_mapped_dirs(false));
        assert!(errors_of(quote!(root: "r", ram: 1, mapped_dirs: [#(#max),*])).is_empty());
        assert!(
            errors_of(quote!(root: "r", ram: 1, local_only: false, mapped_dirs: [#(#max),*]))
                .is_empty()
        );
        let over = dirs(limits::max_mapped_dirs(false) + 1);
        let errors =
            errors_of(quote!(root: "r", ram: 1, local_only: false, mapped_dirs: [#(#over),*]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("too many mapped_dirs"), "{errors:?}");
        let errors = errors_of(quote!(root: "r", ram: 1, ip: "10.0.0.2"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].ends_with("; remove `ip`"), "{errors:?}");
    }

    #[test]
    fn a_misspelt_required_key_is_not_also_reported_missing() {
        let errors = errors_of(quote!(root: "r", rma: 1));
        assert_eq!(errors, ["unknown key `rma`: did you mean `ram`?"]);
        let errors = errors_of(quote!(root: "r", banana: 1));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("unknown key `banana`: expected one of `root`, `ram`,"));
        assert!(errors[1].starts_with("missing key `ram`"));
    }

    #[test]
    fn an_image_is_checked_as_the_library_parses_it_and_replaces_root() {
        assert!(errors_of(quote!(image: "alpine:3.20", ram: 1)).is_empty());
        assert!(errors_of(quote!(image: name, ram: 1)).is_empty());
        // With an image, args alone are the entrypoint's arguments.
        assert!(errors_of(quote!(image: "alpine", ram: 1, args: ["-c", "x"])).is_empty());
        for reference in [
            "Alpine",
            "a:b:c",
            "a@sha256:00",
            "",
            "localhost:5000/x:y",
            "ghcr.io/o/a",
        ] {
            let errors = errors_of(quote!(image: #reference, ram: 1));
            let runtime = monocore_rules::parse_image_ref(reference);
            assert_eq!(
                errors.is_empty(),
                runtime.is_ok(),
                "{reference}: {errors:?}"
            );
            if let Err(e) = runtime {
                assert_eq!(errors, [e.to_string()]);
            }
        }
        let errors = errors_of(quote!(image: "a", root: "r", ram: 1));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("`image` and `root` are alternatives"));
        let errors = errors_of(quote!(image: "a", image: "b", ram: 1));
        assert!(errors[0].starts_with("duplicate key `image`"), "{errors:?}");
        let errors = errors_of(quote!(image: ["a"], ram: 1));
        assert!(errors[0].contains("`image`"), "{errors:?}");
    }
}
