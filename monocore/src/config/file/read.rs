//! Reading each key's TOML value into the config: its type, a number in
//! range, a list within its limit whose strings each parse with their
//! type's `FromStr`. Every problem is recorded on the value or element at
//! fault; the rules over the whole config are validation's.

use std::{ops::Range, path::Path};

use monocore_rules::{Field, RangeError, check_num_vcpus, check_ram_mib};
use toml::Spanned;
use toml::de::DeValue;

use super::Collector;
use crate::config::{
    AllowEntry, EnvPair, LinuxRlimit, LogLevel, MicroVmConfig, PathPair, PortPair,
};

fn type_error(c: &mut Collector<'_>, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
    let found = value.get_ref().type_str();
    c.at(
        value.span(),
        Some(key),
        format!("expected {expected}, found {found}"),
    );
}

fn string<'v>(
    c: &mut Collector<'_>,
    key: &str,
    value: &'v Spanned<DeValue<'_>>,
) -> Option<&'v str> {
    let s = value.get_ref().as_str();
    if s.is_none() {
        type_error(c, key, value, "a string");
    }
    s
}

/// A TOML integer as an `i128` (any radix, sign, `_`); a non-integer is a
/// type error.
fn integer(c: &mut Collector<'_>, key: &str, value: &Spanned<DeValue<'_>>) -> Option<i128> {
    let Some(int) = value.get_ref().as_integer() else {
        type_error(c, key, value, "an integer");
        return None;
    };
    let digits = int.as_str().replace('_', "");
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.strip_prefix('+').unwrap_or(&digits)),
    };
    // TOML integers are 64-bit: they always fit an i128.
    let n = i128::from_str_radix(digits, int.radix()).ok()?;
    Some(if negative { -n } else { n })
}

/// The field's value from an integer: the rule's own error (`RangeError`)
/// when it does not fit the field's type; a value that fits is checked by
/// validation, which says the same.
fn ranged<T: TryFrom<i128>>(
    c: &mut Collector<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    rule: fn(i128) -> Result<T, RangeError>,
) -> Option<T> {
    let n = integer(c, key, value)?;
    match T::try_from(n) {
        Ok(v) => Some(v),
        Err(_) => {
            let message = match rule(n) {
                Err(e) => e.to_string(),
                Ok(_) => format!("{n} does not fit"),
            };
            c.at(value.span(), Some(key), message);
            None
        }
    }
}

/// Applies a list of strings, each parsed with `parse`; returns the parsed
/// entries and the spans of their elements, in order (`None` when the
/// value is not a list of a size worth reading).
fn strings<T>(
    c: &mut Collector<'_>,
    field: Field,
    value: &Spanned<DeValue<'_>>,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Option<(Vec<T>, Vec<Range<usize>>)> {
    let key = field.key();
    let Some(array) = value.get_ref().as_array() else {
        type_error(c, key, value, "a list of strings");
        return None;
    };
    // Bounded cost: an oversized list is reported, not parsed element by
    // element (validation checks the length again once `net` is known).
    if let Err(e) = monocore_rules::check_len_either_way(field, array.len()) {
        c.at(value.span(), Some(key), e.to_string());
        return None;
    }
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    for element in array.iter() {
        let Some(s) = element.get_ref().as_str() else {
            type_error(c, key, element, "a string");
            continue;
        };
        match parse(s) {
            Ok(v) => {
                out.push(v);
                spans.push(element.span());
            }
            Err(message) => c.at(element.span(), Some(key), message),
        }
    }
    Some((out, spans))
}

/// Stores the parsed entries of a list; returns their spans.
fn set_list<T>(
    parsed: Option<(Vec<T>, Vec<Range<usize>>)>,
    target: &mut Vec<T>,
) -> Option<Vec<Range<usize>>> {
    parsed.map(|(entries, spans)| {
        *target = entries;
        spans
    })
}

fn resolve(base: &Path, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        // `components` drops the `.` in `dir/./data`.
        base.join(path)
            .components()
            .collect::<std::path::PathBuf>()
            .to_string_lossy()
            .into_owned()
    }
}

/// `value` as a string parsed by `parse`; its error is reported on the
/// value.
fn parsed<T, E: std::fmt::Display>(
    c: &mut Collector<'_>,
    key: &'static str,
    value: &Spanned<DeValue<'_>>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    let s = string(c, key, value)?;
    parse(s)
        .map_err(|e| c.at(value.span(), Some(key), e.to_string()))
        .ok()
}

/// `value` as a boolean.
fn boolean(c: &mut Collector<'_>, key: &'static str, value: &Spanned<DeValue<'_>>) -> Option<bool> {
    let b = value.get_ref().as_bool();
    if b.is_none() {
        type_error(c, key, value, "true or false");
    }
    b
}

/// Sets `field` from `value`. Returns `None` if the value did not reach the
/// config, else the spans of the list entries that did (empty for a
/// scalar).
pub(super) fn apply_key(
    c: &mut Collector<'_>,
    config: &mut MicroVmConfig,
    field: Field,
    value: &Spanned<DeValue<'_>>,
    base: &Path,
) -> Option<Vec<Range<usize>>> {
    let key = field.key();
    let set = |done: bool| done.then(Vec::new);
    match field {
        Field::Root => set(string(c, key, value)
            .map(|s| config.root_path = base.join(s))
            .is_some()),
        Field::Ram => set(ranged(c, key, value, check_ram_mib)
            .map(|n| config.ram_mib = n)
            .is_some()),
        Field::Vcpus => set(ranged(c, key, value, check_num_vcpus)
            .map(|n| config.num_vcpus = n)
            .is_some()),
        Field::Exec => set(string(c, key, value)
            .map(|s| config.exec_path = Some(s.into()))
            .is_some()),
        Field::Workdir => set(string(c, key, value)
            .map(|s| config.workdir_path = Some(s.into()))
            .is_some()),
        Field::Console => set(string(c, key, value)
            .map(|s| config.console_output = Some(resolve(base, s).into()))
            .is_some()),
        Field::Ip => set(parsed(c, key, value, monocore_rules::parse_ipv4)
            .map(|ip| config.assigned_ip = Some(ip))
            .is_some()),
        Field::LocalOnly => set(boolean(c, key, value)
            .map(|b| config.local_only = b)
            .is_some()),
        Field::Net => set(boolean(c, key, value).map(|b| config.net = b).is_some()),
        Field::LogLevel => set(parsed(c, key, value, str::parse::<LogLevel>)
            .map(|level| config.log_level = level)
            .is_some()),
        Field::Args => set_list(
            strings(c, field, value, |s| Ok(s.to_owned())),
            &mut config.args,
        ),
        Field::Env => set_list(
            strings(c, field, value, |s| {
                s.parse::<EnvPair>().map_err(|e| e.to_string())
            }),
            &mut config.env,
        ),
        Field::PortMap => set_list(
            strings(c, field, value, |s| {
                s.parse::<PortPair>().map_err(|e| e.to_string())
            }),
            &mut config.port_map,
        ),
        Field::Allow => set_list(
            strings(c, field, value, |s| {
                s.parse::<AllowEntry>().map_err(|e| e.to_string())
            }),
            &mut config.allow,
        ),
        Field::Rlimits => set_list(
            strings(c, field, value, |s| {
                s.parse::<LinuxRlimit>().map_err(|e| e.to_string())
            }),
            &mut config.rlimits,
        ),
        Field::MappedDirs => set_list(
            strings(c, field, value, |s| {
                let pair = s.parse::<PathPair>().map_err(|e| e.to_string())?;
                let host = resolve(base, pair.get_host().as_str());
                Ok(PathPair::with_distinct(
                    host.into(),
                    pair.get_guest().clone(),
                ))
            }),
            &mut config.mapped_dirs,
        ),
    }
}
