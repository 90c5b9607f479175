//! The rule phase of `vm!`: every `monocore_rules` rule over the values that
//! are literals, each error on the token at fault, with the rule's own
//! wording (the same text `MicroVmConfig::validate` shows at run time).
//!
//! A rule that needs a value given as an expression is left to run time,
//! except where the literals alone already break it (the command's size is
//! counted from the literal strings only, with the largest stack limit when
//! the limits are not all literals).
//!
//! Plain Rust over `proc_macro2` and `syn`, like `parse`: fuzzable from an
//! ordinary crate.

use monocore_rules::{
    Field as Key, RuleError, check_arg, check_args_have_exec, check_command_size, check_env,
    check_exec, check_host_path, check_ip, check_len, check_mapped_dirs, check_networking,
    check_port_map, check_rlimits, command_field, normalize_guest_path, stack_soft_limit,
};
use proc_macro2::Span;
use syn::LitStr;

use super::validate::{Errors, List, Optional, Value};

/// The message for a rule error: the rule's wording, then its fix.
pub(super) fn message(error: &RuleError) -> String {
    match error.fix() {
        Some(fix) => format!("{error}; {fix}"),
        None => error.to_string(),
    }
}

/// Reports `result`'s error on a string literal.
fn on_lit(errors: &mut Errors, lit: &LitStr, result: Result<(), impl Into<RuleError>>) {
    if let Err(e) = result {
        errors.spanned(lit, message(&e.into()));
    }
}

/// Reports an error about the whole value of `field`.
fn on_value(errors: &mut Errors, c: &Optional, field: Key, error: &RuleError) {
    match c.value_of(field) {
        Some(tokens) => errors.spanned(tokens, message(error)),
        None => errors.at(Span::call_site(), message(error)),
    }
}

/// The literal items of a list, with their indices in the list.
fn literals<T>(list: Option<&List<T>>) -> Vec<(usize, &T)> {
    match list {
        Some(List::Items(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::Lit(lit) => Some((i, lit)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn lit<T>(value: Option<&Value<T>>) -> Option<&T> {
    match value {
        Some(Value::Lit(lit)) => Some(lit),
        _ => None,
    }
}

/// The item at `index` of a literal list.
fn item<'a, T>(items: &[(usize, &'a T)], index: usize) -> Option<&'a T> {
    items.iter().find(|(i, _)| *i == index).map(|(_, t)| *t)
}

/// Applies every rule to the literal values in `c` (and `root`). With an
/// `image`, `args` without `exec` are the image entrypoint's arguments.
pub fn check(errors: &mut Errors, root: Option<&Value<LitStr>>, image: bool, c: &Optional) {
    if let Some(root) = lit(root) {
        on_lit(errors, root, check_host_path(&root.value()));
    }
    if let Some(exec) = lit(c.exec.as_ref()) {
        on_lit(errors, exec, check_exec(&exec.value()));
    }
    if let Some(workdir) = lit(c.workdir.as_ref()) {
        on_lit(
            errors,
            workdir,
            normalize_guest_path(&workdir.value()).map(drop),
        );
    }
    if let Some(console) = lit(c.console.as_ref()) {
        on_lit(errors, console, check_host_path(&console.value()));
    }
    if let Some(ip) = lit(c.ip.as_ref())
        && let Err(e) = check_ip(ip.octets.into())
    {
        errors.at(ip.span, message(&e));
    }
    if let Some(List::Items(items)) = &c.args
        && !image
        && let Err(e) = check_args_have_exec(c.exec.is_some(), items.len())
    {
        on_value(errors, c, Key::Args, &e);
    }
    for (_, arg) in literals(c.args.as_ref()) {
        on_lit(errors, arg, check_arg(&arg.value()));
    }
    for (_, var) in literals(c.env.as_ref()) {
        if let Err(e) = check_env(&var.name, &var.value) {
            errors.at(var.span, message(&e));
        }
    }
    command_size(errors, c);

    // `local_only` defaults to true; an expression is known at run time.
    let local_only = match &c.local_only {
        None => Some(true),
        Some(Value::Lit(b)) => Some(b.value),
        Some(_) => None,
    };
    mapped_dirs(errors, c, local_only);
    port_map(errors, c, local_only);
    rlimits(errors, c);
}

/// The command's size, from its literal strings (a lower bound when some
/// are expressions, checked against the most space any stack limit gives).
fn command_size(errors: &mut Errors, c: &Optional) {
    let lens = |list: Option<&List<usize>>| -> Vec<usize> {
        match list {
            Some(List::Items(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Lit(len) => *len,
                    _ => 0,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let arg_lens = lens(map_list(c.args.as_ref(), |a| a.value().len()).as_ref());
    let env_lens = lens(
        map_list(c.env.as_ref(), |e| {
            e.name.len().saturating_add(1).saturating_add(e.value.len())
        })
        .as_ref(),
    );
    let exec_len = match &c.exec {
        None => None,
        Some(Value::Lit(exec)) => Some(exec.value().len()),
        Some(_) => Some(1),
    };
    let all_literal = match &c.rlimits {
        None => true,
        Some(List::Items(items)) => items.iter().all(|i| matches!(i, Value::Lit(_))),
        Some(_) => false,
    };
    let stack = if all_literal {
        stack_soft_limit(
            literals(c.rlimits.as_ref())
                .iter()
                .map(|(_, r)| (r.number, r.soft)),
        )
    } else {
        Some(u64::MAX)
    };
    if let Err(e) = check_command_size(exec_len, &arg_lens, &env_lens, stack) {
        let field = command_field(!arg_lens.is_empty(), !env_lens.is_empty());
        on_value(errors, c, field, &e);
    }
}

/// A list of `f(item)` for the literal items, keeping the positions of the
/// others.
fn map_list<T>(list: Option<&List<T>>, f: impl Fn(&T) -> usize) -> Option<List<usize>> {
    match list {
        Some(List::Items(items)) => Some(List::Items(
            items
                .iter()
                .map(|item| match item {
                    Value::Lit(lit) => Value::Lit(f(lit)),
                    _ => Value::Invalid,
                })
                .collect(),
        )),
        _ => None,
    }
}

fn mapped_dirs(errors: &mut Errors, c: &Optional, local_only: Option<bool>) {
    if let (Some(false), Some(List::Items(items))) = (local_only, &c.mapped_dirs)
        && let Err(e) = check_len(Key::MappedDirs, items.len(), true)
    {
        on_value(errors, c, Key::MappedDirs, &e);
        return;
    }
    let dirs = literals(c.mapped_dirs.as_ref());
    let pairs: Vec<(usize, &str, &str)> = dirs
        .iter()
        .map(|(i, d)| (*i, d.host.as_str(), d.guest.as_str()))
        .collect();
    for (index, error) in check_mapped_dirs(&pairs) {
        let Some(dir) = item(&dirs, index) else {
            continue;
        };
        errors.at(dir.span, message(&error));
        if let RuleError::GuestPathsOverlap {
            first, first_index, ..
        } = &error
            && let Some(first_dir) = item(&dirs, *first_index)
        {
            errors.at(first_dir.span, format!("`{first}` is mapped here"));
        }
    }
}

fn port_map(errors: &mut Errors, c: &Optional, local_only: Option<bool>) {
    let ports = literals(c.port_map.as_ref());
    if let (Some(local_only), Some(List::Items(items))) = (local_only, &c.port_map)
        && let Some(first) = items.first()
    {
        let (span, text) = match first {
            Value::Lit(p) => (Some(p.span), format!("{}:{}", p.host, p.guest)),
            _ => (None, "port_map[0]".to_owned()),
        };
        if let Err(e) = check_networking(local_only, Some(&text)) {
            match span {
                Some(span) => errors.at(span, message(&e)),
                None => on_value(errors, c, Key::PortMap, &e),
            }
        }
    }
    let triples: Vec<(usize, u16, u16)> =
        ports.iter().map(|(i, p)| (*i, p.host, p.guest)).collect();
    for (index, error) in check_port_map(&triples) {
        let Some(port) = item(&ports, index) else {
            continue;
        };
        errors.at(port.span, message(&error));
        let first = match &error {
            RuleError::DuplicateHostPort { port, first_index } => Some((
                *first_index,
                format!("host port {port} is first mapped here"),
            )),
            RuleError::DuplicateGuestPort { port, first_index } => Some((
                *first_index,
                format!("guest port {port} is first mapped here"),
            )),
            _ => None,
        };
        if let Some((first_index, note)) = first
            && let Some(first) = item(&ports, first_index)
        {
            errors.at(first.span, note);
        }
    }
}

fn rlimits(errors: &mut Errors, c: &Optional) {
    let limits = literals(c.rlimits.as_ref());
    let quads: Vec<(usize, u32, u64, u64)> = limits
        .iter()
        .map(|(i, r)| (*i, r.number, r.soft, r.hard))
        .collect();
    for (index, error) in check_rlimits(&quads) {
        let Some(limit) = item(&limits, index) else {
            continue;
        };
        errors.spanned(&limit.resource, message(&error));
        if let RuleError::DuplicateRlimit { first_index, .. } = &error
            && let Some(first) = item(&limits, *first_index)
        {
            errors.spanned(
                &first.resource,
                format!("{} is first limited here", first.resource),
            );
        }
    }
}
