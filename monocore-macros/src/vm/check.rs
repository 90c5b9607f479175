//! The rule phase of `vm!`: the input as a `monocore_rules::ConfigView`
//! (each literal known, everything else known at run time) through
//! `monocore_rules::check_config`, the very call `MicroVmConfig::validate`
//! makes at run time, then each error on the token at fault, with the
//! rule's own wording.
//!
//! Which rule applies to what, and what an unknown value leaves unchecked,
//! is decided by `check_config` alone; this module only says what is known
//! and where each [`ConfigPath`] is in the input.
//!
//! Plain Rust over `proc_macro2` and `syn`, like `parse`: fuzzable from an
//! ordinary crate.

use std::net::Ipv4Addr;
use std::path::Path;

use monocore_rules::config::{
    DEFAULT_LOCAL_ONLY, DEFAULT_NET, EnvVar, MappedDir, PortMapping, Rlimit,
};
use monocore_rules::{
    ConfigPath, ConfigView, Field as Key, Known, KnownList, RuleError, check_config, rlimit_name,
};
use proc_macro2::Span;
use syn::LitBool;

use super::errors::{Errors, message};
use super::model::{List, Optional, StrLit, Value, lit};
use super::read::Read;

/// Applies every rule to what `read` knows, recording each error.
pub fn check(read: &Read, errors: &mut Errors) {
    for (at, error) in check_config(&view(read)) {
        report(read, errors, at, &error);
    }
}

/// The input as the rules see it.
fn view(read: &Read) -> ConfigView<'_> {
    let o = &read.optional;
    // With an image, an exec not given is the image's entrypoint.
    let exec = match (&read.image, o.given(Key::Exec)) {
        (Some(_), false) => Some(Known::Later),
        _ => scalar(o, Key::Exec, text(o.exec.as_ref())),
    };
    ConfigView {
        root: known(text(read.root.as_ref()).map(Path::new)),
        ram: known(lit(read.ram.as_ref()).and_then(|n| n.base10_parse().ok())),
        vcpus: scalar(
            o,
            Key::Vcpus,
            lit(o.vcpus.as_ref()).and_then(|n| n.base10_parse().ok()),
        ),
        exec,
        args: list(o, Key::Args, o.args.as_ref(), |a| a.text.as_str()),
        env: list(o, Key::Env, o.env.as_ref(), |e| EnvVar {
            name: &e.name,
            value: &e.value,
        }),
        workdir: scalar(o, Key::Workdir, text(o.workdir.as_ref())),
        mapped_dirs: list(o, Key::MappedDirs, o.mapped_dirs.as_ref(), |d| MappedDir {
            host: &d.host,
            guest: &d.guest,
        }),
        port_map: list(o, Key::PortMap, o.port_map.as_ref(), |p| PortMapping {
            host: p.host,
            guest: p.guest,
        }),
        net: boolean(o, Key::Net, o.net.as_ref(), DEFAULT_NET),
        allow: list(o, Key::Allow, o.allow.as_ref(), |a| &a.rule),
        rlimits: list(o, Key::Rlimits, o.rlimits.as_ref(), |r| Rlimit {
            resource: r.number,
            soft: r.soft,
            hard: r.hard,
        }),
        console: scalar(o, Key::Console, text(o.console.as_ref())),
        ip: scalar(
            o,
            Key::Ip,
            lit(o.ip.as_ref()).map(|ip| Ipv4Addr::from(ip.octets)),
        ),
        local_only: boolean(o, Key::LocalOnly, o.local_only.as_ref(), DEFAULT_LOCAL_ONLY),
    }
}

/// A boolean key: its default if not given, else its literal, or known at
/// run time only.
fn boolean(o: &Optional, field: Key, value: Option<&Value<LitBool>>, default: bool) -> Known<bool> {
    match (o.given(field), lit(value)) {
        (false, _) => Known::Now(default),
        (true, Some(b)) => Known::Now(b.value),
        (true, None) => Known::Later,
    }
}

/// A string literal's text.
fn text(value: Option<&Value<StrLit>>) -> Option<&str> {
    lit(value).map(|s| s.text.as_str())
}

/// A known value, or one known at run time only (an expression, or a
/// value already reported).
fn known<T>(value: Option<T>) -> Known<T> {
    value.map_or(Known::Later, Known::Now)
}

/// An optional key: `None` if not given.
fn scalar<T>(o: &Optional, field: Key, value: Option<T>) -> Option<Known<T>> {
    o.given(field).then(|| known(value))
}

/// A list key: empty if not given; wholly unknown if an expression (or
/// already reported); else its items, each known if a literal.
fn list<'a, T, U>(
    o: &Optional,
    field: Key,
    list: Option<&'a List<T>>,
    item: impl Fn(&'a T) -> U,
) -> KnownList<U> {
    match list {
        Some(List::Items(items)) => Known::Now(
            items
                .iter()
                .map(|i| match i {
                    Value::Lit(t) => Known::Now(item(t)),
                    _ => Known::Later,
                })
                .collect(),
        ),
        Some(List::Expr(_)) => Known::Later,
        None if o.given(field) => Known::Later,
        None => Known::Now(Vec::new()),
    }
}

/// Records `error` at `at`: on the list item's literal, else the value's
/// literal or tokens; then a note on the earlier item it refers to.
fn report(read: &Read, errors: &mut Errors, at: ConfigPath, error: &RuleError) {
    let o = &read.optional;
    let item = at.index.and_then(|i| o.item_span(at.field, i));
    match (item, literal_span(read, at.field), o.value_of(at.field)) {
        (Some(span), _, _) | (None, Some(span), _) => errors.at(span, message(error)),
        (None, None, Some(tokens)) => errors.spanned(tokens, message(error)),
        (None, None, None) => errors.at(Span::call_site(), message(error)),
    }
    if let Some((first_index, note)) = first_here(error)
        && let Some(span) = o.item_span(at.field, first_index)
    {
        errors.at(span, note);
    }
    // The other half of a conflict between two keys.
    if let RuleError::NetWithTsi = error
        && let Some(tokens) = o.value_of(Key::LocalOnly)
    {
        errors.spanned(tokens, "TSI is turned on here");
    }
}

/// The span of a single value's literal, if it was read as one.
fn literal_span(read: &Read, field: Key) -> Option<Span> {
    let o = &read.optional;
    let of_str = |v: Option<&Value<StrLit>>| lit(v).map(|s| s.lit.span());
    match field {
        Key::Root => of_str(read.root.as_ref()),
        Key::Ram => lit(read.ram.as_ref()).map(syn::LitInt::span),
        Key::Vcpus => lit(o.vcpus.as_ref()).map(syn::LitInt::span),
        Key::Exec => of_str(o.exec.as_ref()),
        Key::Workdir => of_str(o.workdir.as_ref()),
        Key::Console => of_str(o.console.as_ref()),
        Key::Ip => lit(o.ip.as_ref()).map(|ip| ip.span),
        _ => None,
    }
}

/// For an error about a repeat, the earlier item's index and what to say
/// there.
fn first_here(error: &RuleError) -> Option<(usize, String)> {
    Some(match error {
        RuleError::GuestPathsOverlap {
            first, first_index, ..
        } => (*first_index, format!("`{first}` is mapped here")),
        RuleError::DuplicateHostPort { port, first_index } => (
            *first_index,
            format!("host port {port} is first mapped here"),
        ),
        RuleError::DuplicateGuestPort { port, first_index } => (
            *first_index,
            format!("guest port {port} is first mapped here"),
        ),
        RuleError::DuplicateAllow { entry, first_index } => {
            (*first_index, format!("{entry} is first listed here"))
        }
        RuleError::DuplicateRlimit {
            resource,
            first_index,
        } => {
            let name = rlimit_name(*resource).map_or_else(|| resource.to_string(), str::to_owned);
            (*first_index, format!("{name} is first limited here"))
        }
        _ => return None,
    })
}
