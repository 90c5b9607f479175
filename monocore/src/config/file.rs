//! TOML config files, with the same keys as the `vm!` macro.
//!
//! ```toml
//! root = "./rootfs"          # relative to the file's directory
//! ram = 512
//! vcpus = 2
//! exec = "/bin/echo"
//! args = ["Hello", "from a microVM"]
//! env = ["GREETING=hello"]
//! mapped_dirs = ["./data:/data"]
//! port_map = ["8080:80"]
//! rlimits = ["RLIMIT_NOFILE=1024:2048"]
//! log_level = "info"
//! ```
//!
//! Every problem is reported, each with its line and column, not only the
//! first: syntax errors, unknown keys (with a "did you mean" hint), wrong
//! value types, values that do not parse, and every validation rule of
//! [`MicroVmConfig::validate`](crate::vm::MicroVmConfig::validate).

use std::{fmt, io::Read, net::Ipv4Addr, ops::Range, path::Path};

use monocore_rules::{keys, limits};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::{
    InvalidMicroVMConfigError as E,
    config::{EnvPair, PathPair, PortPair},
    vm::{LinuxRlimit, LogLevel, MicroVmConfig},
};

/// One problem in a config file, located by line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The line of the offending token.
    pub line: usize,
    /// The column (in characters) of the offending token.
    pub column: usize,
    /// The key the problem belongs to, if any.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the config file:\n{}", .0.len(), list(.0))]
pub struct ConfigFileErrors(pub Vec<ConfigFileError>);

fn list(errors: &[ConfigFileError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string value (or list element) with where it sits in the file.
type Element = (String, Range<usize>);

/// Where each key's value and list elements sit in the file, to locate
/// validation errors.
#[derive(Default)]
struct Located {
    /// (key, value span, element spans with their text)
    keys: Vec<(String, Range<usize>, Vec<Element>)>,
    /// The whole document's span, for missing keys.
    top: Range<usize>,
}

struct Collector<'a> {
    text: &'a str,
    errors: Vec<ConfigFileError>,
}

impl Collector<'_> {
    fn at(&mut self, span: Range<usize>, key: Option<&str>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.errors.push(ConfigFileError {
            line,
            column,
            key: key.map(str::to_owned),
            message: message.into(),
        });
    }
}

/// 1-based line and column (in chars) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Parses and validates a config file's text. Relative `root`, mapped host
/// directories and console paths are resolved against `base_dir` (the file's
/// directory).
///
/// ```
/// use monocore::config::file::parse_config;
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("rootfs"))?;
/// let config = parse_config("root = \"rootfs\"\nram = 256\n", dir.path()).unwrap();
/// assert_eq!(config.ram_mib, 256);
///
/// let errors = parse_config("root = \"rootfs\"\nram = 0\nrma = 1\n", dir.path()).unwrap_err();
/// let text: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
/// assert_eq!(text, [
///     "2:7: `ram`: amount of RAM is zero: at least 1 MiB is required",
///     "3:1: unknown key `rma`: did you mean `ram`?",
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_config(text: &str, base_dir: &Path) -> Result<MicroVmConfig, ConfigFileErrors> {
    // Bounded cost: a file beyond the limit is refused before parsing.
    if text.len() > limits::MAX_CONFIG_FILE_LEN {
        return Err(ConfigFileErrors(vec![too_large(Some(text.len()))]));
    }
    let mut c = Collector {
        text,
        errors: Vec::new(),
    };
    let (table, syntax_errors) = DeTable::parse_recoverable(text);
    for e in syntax_errors {
        c.at(e.span().unwrap_or(0..0), None, e.message().to_owned());
    }
    let mut located = Located {
        top: table.span(),
        ..Located::default()
    };
    let mut config = MicroVmConfig::new(base_dir, 0);
    let (mut have_root, mut have_ram) = (false, false);
    for (key, value) in table.get_ref().iter() {
        let name = key.get_ref().as_ref();
        if !keys::is_key(name) {
            c.at(key.span(), None, keys::unknown_key_message(name));
            continue;
        }
        have_root |= name == "root";
        have_ram |= name == "ram";
        let elements = apply_key(&mut c, &mut config, name, value, base_dir);
        located.keys.push((name.to_owned(), value.span(), elements));
    }
    let mut reported: Vec<String> = c.errors.iter().filter_map(|e| e.key.clone()).collect();
    for (present, key) in [(have_root, "root"), (have_ram, "ram")] {
        if !present {
            c.at(
                located.top.start..located.top.start,
                None,
                format!("missing required key `{key}`"),
            );
            reported.push(key.to_owned());
        }
    }
    // Validate what parsed, but say nothing more about a key that already
    // has an error (or is missing): one problem, one message.
    for error in config.validation_errors() {
        let (key, span) = locate(&located, &error);
        let key = key.or_else(|| match error {
            E::RootPathDoesNotExist(_) | E::RootPathIsNotADirectory(_) => Some("root".to_owned()),
            E::RamIsZero => Some("ram".to_owned()),
            _ => None,
        });
        if key.as_ref().is_some_and(|k| reported.contains(k)) {
            continue;
        }
        c.at(span, key.as_deref(), error.to_string());
    }
    c.errors.sort_by_key(|e| (e.line, e.column));
    if c.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigFileErrors(c.errors))
    }
}

/// Reads and parses a config file; relative paths in it are resolved against
/// its directory.
///
/// At most [`limits::MAX_CONFIG_FILE_LEN`] bytes are read: a larger (or
/// endless) file is a [`ConfigFileErrors`] saying so, not an out-of-memory.
///
/// ```
/// use monocore::{config::file::load_config, MonocoreError};
/// let err = load_config("/dev/zero".as_ref()).unwrap_err();
/// assert!(matches!(err, MonocoreError::ConfigFile(_)), "{err}");
/// assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
/// ```
pub fn load_config(path: &Path) -> Result<MicroVmConfig, crate::MonocoreError> {
    let mut bytes = Vec::new();
    let max = limits::MAX_CONFIG_FILE_LEN as u64;
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ConfigFileErrors(vec![too_large(None)]).into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the config file is not valid UTF-8: {e}"),
        )
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_config(&text, base).map_err(crate::MonocoreError::from)
}

/// The error for a file over [`limits::MAX_CONFIG_FILE_LEN`]; `len` is its
/// size when known (a file read with a bound is only known to be larger).
fn too_large(len: Option<usize>) -> ConfigFileError {
    let max = limits::MAX_CONFIG_FILE_LEN;
    let size = match len {
        Some(len) => format!("{len} bytes long"),
        None => format!("longer than {max} bytes"),
    };
    ConfigFileError {
        line: 1,
        column: 1,
        key: None,
        message: format!("the config file is {size}: at most {max} bytes are allowed"),
    }
}

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

fn integer(
    c: &mut Collector<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    max: u64,
) -> Option<u64> {
    let Some(int) = value.get_ref().as_integer() else {
        type_error(c, key, value, "an integer");
        return None;
    };
    let digits = int.as_str().replace('_', "");
    let unsigned = digits.strip_prefix('+').unwrap_or(&digits);
    // `as_str` holds the digits without a radix prefix. A leading `-` makes
    // `from_str_radix` into u64 fail: negatives are out of range.
    let parsed = u64::from_str_radix(unsigned, int.radix()).ok();
    match parsed.filter(|n| *n <= max) {
        Some(n) => Some(n),
        None => {
            c.at(
                value.span(),
                Some(key),
                format!("{} is out of range: expected 0 to {max}", int.as_str()),
            );
            None
        }
    }
}

/// Applies a list of strings, each parsed with `parse`; returns the
/// elements' text and spans.
fn strings<T>(
    c: &mut Collector<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> (Vec<T>, Vec<Element>) {
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    let Some(array) = value.get_ref().as_array() else {
        type_error(c, key, value, "a list of strings");
        return (out, spans);
    };
    // Bounded cost: an oversized list is reported, not parsed element by
    // element.
    if let Some(max) = max_len(key)
        && array.len() > max
    {
        c.at(
            value.span(),
            Some(key),
            format!(
                "too many elements: {} given, at most {max} allowed",
                array.len()
            ),
        );
        return (out, spans);
    }
    for element in array.iter() {
        let Some(s) = element.get_ref().as_str() else {
            type_error(c, key, element, "a string");
            continue;
        };
        match parse(s) {
            Ok(v) => out.push(v),
            Err(message) => c.at(element.span(), Some(key), message),
        }
        spans.push((s.to_owned(), element.span()));
    }
    (out, spans)
}

/// The most elements a list key may hold (`monocore_rules::limits`).
fn max_len(key: &str) -> Option<usize> {
    Some(match key {
        "args" => limits::MAX_ARGS,
        "env" => limits::MAX_ENV_VARS,
        "mapped_dirs" => limits::MAX_MAPPED_DIRS,
        "port_map" => limits::MAX_PORT_MAPPINGS,
        "rlimits" => limits::MAX_RLIMITS,
        _ => return None,
    })
}

fn resolve(base: &Path, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        base.join(path).to_string_lossy().into_owned()
    }
}

fn apply_key(
    c: &mut Collector<'_>,
    config: &mut MicroVmConfig,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    base: &Path,
) -> Vec<Element> {
    let mut elements = Vec::new();
    if let Some(text) = value.get_ref().as_str() {
        elements.push((text.to_owned(), value.span()));
    }
    match key {
        "root" => {
            if let Some(s) = string(c, key, value) {
                config.root_path = base.join(s);
            }
        }
        "ram" => {
            if let Some(n) = integer(c, key, value, u64::from(u32::MAX)) {
                config.ram_mib = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        "vcpus" => {
            if let Some(n) = integer(c, key, value, u64::from(u8::MAX)) {
                config.num_vcpus = u8::try_from(n).unwrap_or(u8::MAX);
            }
        }
        "exec" => config.exec_path = string(c, key, value).map(Into::into),
        "workdir" => config.workdir_path = string(c, key, value).map(Into::into),
        "console" => config.console_output = string(c, key, value).map(|s| resolve(base, s).into()),
        "ip" => {
            if let Some(s) = string(c, key, value) {
                match s.parse::<Ipv4Addr>() {
                    Ok(ip) => config.assigned_ip = Some(ip),
                    Err(_) => c.at(
                        value.span(),
                        Some(key),
                        format!("{s:?} is not an IPv4 address such as 10.0.0.2"),
                    ),
                }
            }
        }
        "local_only" => match value.get_ref().as_bool() {
            Some(b) => config.local_only = b,
            None => type_error(c, key, value, "true or false"),
        },
        "log_level" => {
            if let Some(s) = string(c, key, value) {
                match s.parse::<LogLevel>() {
                    Ok(level) => config.log_level = level,
                    Err(e) => c.at(value.span(), Some(key), e.to_string()),
                }
            }
        }
        "args" => (config.args, elements) = strings(c, key, value, |s| Ok(s.to_owned())),
        "env" => {
            (config.env, elements) = strings(c, key, value, |s| {
                s.parse::<EnvPair>().map_err(|e| e.to_string())
            })
        }
        "port_map" => {
            (config.port_map, elements) = strings(c, key, value, |s| {
                s.parse::<PortPair>().map_err(|e| e.to_string())
            })
        }
        "rlimits" => {
            (config.rlimits, elements) = strings(c, key, value, |s| {
                s.parse::<LinuxRlimit>().map_err(|e| e.to_string())
            })
        }
        "mapped_dirs" => {
            (config.mapped_dirs, elements) = strings(c, key, value, |s| {
                let pair = s.parse::<PathPair>().map_err(|e| e.to_string())?;
                let host = resolve(base, pair.get_host().as_str());
                Ok(PathPair::with_distinct(
                    host.into(),
                    pair.get_guest().clone(),
                ))
            })
        }
        _ => {}
    }
    elements
}

/// Finds the key, and the list element where possible, that a validation
/// error belongs to.
fn locate(located: &Located, error: &E) -> (Option<String>, Range<usize>) {
    let find_key = |key: &str| located.keys.iter().find(|k| k.0 == key);
    let by_key = |key: &str| find_key(key).map(|k| (Some(k.0.clone()), k.1.clone()));
    let by_element = |key: &str, matches: &dyn Fn(&str) -> bool, last: bool| {
        find_key(key).and_then(|k| {
            let mut hits = k.2.iter().filter(|(text, _)| matches(text));
            let hit = if last { hits.last() } else { hits.next() };
            hit.map(|(_, span)| (Some(k.0.clone()), span.clone()))
        })
    };
    let guest_of = |text: &str| text.split_once(':').map_or(text, |(_, g)| g).to_owned();
    let found = match error {
        E::RootPathDoesNotExist(_) | E::RootPathIsNotADirectory(_) => by_key("root"),
        E::NumVCPUsIsZero => by_key("vcpus"),
        E::RamIsZero => by_key("ram"),
        E::HostPathDoesNotExist(h) | E::HostPathIsNotADirectory(h) | E::InvalidHostPath(h) => {
            by_element(
                "mapped_dirs",
                &|t| t.split(':').next().is_some_and(|host| h.ends_with(host)),
                false,
            )
            .or_else(|| by_element("console", &|t| h.ends_with(t), false))
        }
        E::InvalidCommandLineString(s) => ["exec", "workdir", "args", "env"]
            .into_iter()
            .find_map(|k| by_element(k, &|t| t == s, false)),
        E::InvalidGuestPath(g) => {
            let text = g.to_string();
            by_element(
                "mapped_dirs",
                &|t| text.contains(&format!("`{}`", guest_of(t))),
                false,
            )
            .or_else(|| by_element("workdir", &|t| text.contains(&format!("`{t}`")), false))
        }
        E::ConflictingGuestPaths(_, b) => by_element("mapped_dirs", &|t| guest_of(t) == *b, true),
        E::DuplicateHostPort(p) => by_element(
            "port_map",
            &|t| t.split(':').next() == Some(p.to_string().as_str()),
            true,
        ),
        E::PortIsZero => by_key("port_map"),
        E::RlimitSoftExceedsHard { .. } | E::DuplicateRlimit(_) => by_key("rlimits"),
        E::InvalidEnvName(_) => by_key("env"),
        E::InvalidMappedDir(_) => by_key("mapped_dirs"),
        E::ArgsWithoutExecPath(_) => by_key("args"),
        E::TooMany { what, .. } => by_key(match *what {
            "mapped directories" => "mapped_dirs",
            "port mappings" => "port_map",
            "resource limits" => "rlimits",
            "arguments" => "args",
            crate::vm::validate::COMMAND_BYTES => "args",
            _ => "env",
        }),
    };
    found.unwrap_or((None, located.top.start..located.top.start))
}

impl From<ConfigFileErrors> for crate::MonocoreError {
    fn from(errors: ConfigFileErrors) -> Self {
        Self::ConfigFile(errors)
    }
}

#[cfg(test)]
mod tests;
