//! The reading phase of `vm!`: which keys are given (known, once, the
//! required ones present), and what each value is: a literal of the right
//! shape, read (strings unescaped, pairs split and parsed with
//! `monocore_rules`' parsers, numbers in range), or an expression left to
//! rustc and run time. No rule over the config is applied here: that is
//! [`super::check`]'s job, with the one orchestration both `vm!` and
//! `MicroVmConfig::validate` call.
//!
//! - this file: the keys, and the [`Read`] input;
//! - [`shape`]: what kind of value an expression is, and type errors;
//! - [`scalar`]: strings, numbers, booleans, the log level, the IP address
//!   and the image reference;
//! - [`list`]: list values and the string forms of their elements.
//!
//! Plain Rust over `proc_macro2` and `syn`, like `parse`: fuzzable from an
//! ordinary crate.

mod list;
mod scalar;
mod shape;

use monocore_rules::Field as Key;
use monocore_rules::keys::{suggest_key, unknown_key_message};
use proc_macro2::Span;
use quote::ToTokens;
use syn::{Ident, LitInt};

use super::errors::Errors;
use super::model::{Checked, Optional, Source, StrLit, Value};
use super::parse::{Field, VmInput};

pub use scalar::IMAGE_KEY;

/// The input as read: each value read or left to run time (`None`: not
/// given, or given and already reported).
pub struct Read {
    pub root: Option<Value<StrLit>>,
    /// The `image` key and its value.
    pub image: Option<(Ident, Option<Value<StrLit>>)>,
    pub ram: Option<Value<LitInt>>,
    pub optional: Optional,
    /// The keys given, in order.
    seen: Vec<Ident>,
    /// Keys suggested for unknown keys: a required key suggested this way
    /// is not reported missing as well.
    suggested: Vec<&'static str>,
}

/// Reads every key and value of `input`, recording every error.
pub fn read(input: VmInput, errors: &mut Errors) -> Read {
    let mut read = Read {
        root: None,
        image: None,
        ram: None,
        optional: Optional::default(),
        seen: Vec::new(),
        suggested: Vec::new(),
    };
    for Field { key, value } in input.fields {
        let name = key.to_string();
        if let Some(first) = read.seen.iter().find(|k| **k == key) {
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
            read.image = Some((key.clone(), scalar::image_ref(errors, value)));
            read.seen.push(key);
            continue;
        }
        let Some(field) = Key::from_key(&name) else {
            errors.spanned(&key, unknown_key_message(&name));
            read.suggested.extend(suggest_key(&name));
            continue;
        };
        read.optional.values.push((field, value.to_token_stream()));
        read.value(errors, field, value);
        read.seen.push(key);
    }
    read
}

impl Read {
    /// Reads the value of `field`.
    fn value(&mut self, e: &mut Errors, field: Key, value: syn::Expr) {
        use scalar::{boolean, integer, ip, log_level, string};
        let key = field.key();
        let c = &mut self.optional;
        match field {
            Key::Root => self.root = string(e, key, value),
            Key::Ram => {
                self.ram = integer(
                    e,
                    key,
                    value,
                    "a number of MiB",
                    monocore_rules::check_ram_mib,
                );
            }
            Key::Vcpus => {
                c.vcpus = integer(
                    e,
                    key,
                    value,
                    "a number of vCPUs",
                    monocore_rules::check_num_vcpus,
                );
            }
            Key::Exec => c.exec = string(e, key, value),
            Key::Workdir => c.workdir = string(e, key, value),
            Key::Console => c.console = string(e, key, value),
            Key::Ip => c.ip = ip(e, value),
            Key::LocalOnly => c.local_only = boolean(e, key, value),
            Key::Net => c.net = boolean(e, key, value),
            Key::LogLevel => c.log_level = log_level(e, value),
            Key::Args => c.args = list::list(e, field, value, list::arg),
            Key::Env => c.env = list::list(e, field, value, list::env),
            Key::MappedDirs => c.mapped_dirs = list::list(e, field, value, list::path_pair),
            Key::PortMap => c.port_map = list::list(e, field, value, list::port_pair),
            Key::Allow => c.allow = list::list(e, field, value, list::allow_entry),
            Key::Rlimits => c.rlimits = list::list(e, field, value, list::rlimit),
        }
    }

    /// Whether `key` was given.
    fn has(&self, key: &str) -> bool {
        self.seen.iter().any(|k| k == key)
    }

    /// The keys' last checks (`image` or `root`, the required keys
    /// present), then the input for `expand`, or every error recorded.
    pub fn finish(self, mut errors: Errors) -> syn::Result<Checked> {
        if let (Some((image_key, _)), Some(root_key)) = (
            &self.image,
            self.seen.iter().find(|k| *k == Key::Root.key()),
        ) {
            errors.spanned(
                image_key,
                "`image` and `root` are alternatives: give the guest's root filesystem one way",
            );
            errors.spanned(root_key, "`root` is given here");
        }
        for field in Key::required_fields() {
            let key = field.key();
            let given = self.has(key) || (field == Key::Root && self.image.is_some());
            if !given && !self.suggested.contains(&key) {
                errors.at(
                    Span::call_site(),
                    format!("missing key `{key}`: add {}", missing_hint(field)),
                );
            }
        }
        let source = match (self.root, self.image) {
            (Some(root), None) => Some(Source::Root(root)),
            (None, Some((_, Some(image)))) => Some(Source::Image(image)),
            _ => None,
        };
        let (Some(source), Some(ram)) = (source, self.ram) else {
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
            optional: self.optional,
        })
    }
}

/// What to add for a missing required key.
fn missing_hint(field: Key) -> String {
    match field {
        Key::Root => "`root: \"./rootfs\"`, the host directory holding the guest's root filesystem (or `image: \"alpine:3.20\"`, an OCI image)".to_owned(),
        Key::Ram => "`ram: 512`, the guest memory in MiB".to_owned(),
        other => format!("`{}: …`", other.key()),
    }
}
