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
//! port_map = ["8080:80"]     # on the host's 127.0.0.1, with `net`
//! net = true
//! allow = ["127.0.0.1:5432", "pypi.org:443"]
//! rlimits = ["RLIMIT_NOFILE=1024:2048"]
//! log_level = "info"
//! ```
//!
//! Every problem is reported, each with its line and column, not only the
//! first: syntax errors, unknown keys (with a "did you mean" hint), wrong
//! value types, values that do not parse, and every validation rule of
//! [`MicroVmConfig::validate`](crate::config::MicroVmConfig::validate).

use std::{io::Read, ops::Range, path::Path};

use monocore_rules::{ConfigPath, Field, RuleError, keys, limits};
use toml::de::DeTable;

use super::MicroVmConfig;
pub use crate::error::{ConfigFileError, ConfigFileErrors};

mod read;

/// Where one key's value sits in the file: the key, the whole value, and
/// for a list the element of each entry that reached the config, in config
/// order (entries that did not parse are not in the config, so config index
/// `k` is element `elements[k]`).
struct Place {
    field: Field,
    value: Range<usize>,
    elements: Vec<Range<usize>>,
}

/// Where each key's value and list elements sit in the file, to locate
/// validation errors by their [`ConfigPath`].
#[derive(Default)]
struct Located {
    places: Vec<Place>,
    /// The whole document's span, for missing keys.
    top: Range<usize>,
}

impl Located {
    /// The span a validation error at `at` points to: the list element,
    /// else the key's value, else the top of the file (a key not given).
    fn span(&self, at: ConfigPath) -> Range<usize> {
        let Some(place) = self.places.iter().find(|p| p.field == at.field) else {
            return self.top.start..self.top.start;
        };
        at.index
            .and_then(|i| place.elements.get(i))
            .unwrap_or(&place.value)
            .clone()
    }
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
///     "2:7: `ram`: ram (MiB) is 0: at least 1 is required",
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
        syntax_error(&mut c, &e);
    }
    let mut located = Located {
        top: table.span(),
        ..Located::default()
    };
    let mut config = MicroVmConfig::new(base_dir, 0);
    // Keys whose value did not reach the config: validation says nothing
    // more about them (their field holds a default), one problem, one
    // message.
    let mut failed: Vec<Field> = Vec::new();
    for (key, value) in table.get_ref().iter() {
        let name = key.get_ref().as_ref();
        let Some(field) = Field::from_key(name) else {
            c.at(key.span(), None, keys::unknown_key_message(name));
            continue;
        };
        let before = c.errors.len();
        let elements = read::apply_key(&mut c, &mut config, field, value, base_dir);
        if c.errors.len() > before && elements.is_none() {
            failed.push(field);
        }
        located.places.push(Place {
            field,
            value: value.span(),
            elements: elements.unwrap_or_default(),
        });
    }
    for field in Field::required_fields() {
        if !located.places.iter().any(|p| p.field == field) {
            c.at(
                located.top.start..located.top.start,
                None,
                format!("missing required key `{}`", field.key()),
            );
            failed.push(field);
        }
    }
    // An exec that failed to parse is not missing: `args` are not "without
    // exec".
    if failed.contains(&Field::Exec) {
        failed.push(Field::Args);
    }
    for error in config.validation_errors() {
        let field = error.at.field;
        if failed.contains(&field) && (error.at.index.is_none() || !is_list(field)) {
            continue;
        }
        if needs(error.rule_error()).iter().any(|f| failed.contains(f)) {
            continue;
        }
        c.at(located.span(error.at), Some(field.key()), error.message());
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

/// A syntax error from the TOML parser, with the key named where the
/// parser only says "duplicate key" (its span is the repeated key).
fn syntax_error(c: &mut Collector<'_>, e: &toml::de::Error) {
    // The parser places every error but a dotted key nested too deep: put
    // that one on the key with the most parts.
    let span = e.span().unwrap_or_else(|| deepest_key(c.text));
    let key = c.text.get(span.clone()).map(|k| k.trim().trim_matches('"'));
    match (e.message(), key) {
        ("duplicate key", Some(key)) if !key.is_empty() => {
            let message =
                format!("duplicate key `{key}`: each key may be given once; remove one of them");
            c.at(span, None, message);
        }
        (message, _) => c.at(span, None, message.to_owned()),
    }
}

/// The span of the start of the line whose key (the text before `=`, or a
/// `[table]` header) has the most dotted parts.
fn deepest_key(text: &str) -> Range<usize> {
    let mut best = (0, 0);
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let key = line.split('=').next().unwrap_or_default();
        let parts = key.matches('.').count();
        if parts > best.0 {
            best = (parts, offset);
        }
        offset += line.len();
    }
    best.1..best.1
}

/// The other keys a rule error across keys depends on: when one of them
/// did not reach the config (its field holds the default), the error says
/// nothing about the file.
fn needs(error: Option<&RuleError>) -> &'static [Field] {
    match error {
        Some(RuleError::PortMapNeedsNetworking { .. }) => &[Field::Net, Field::LocalOnly],
        Some(RuleError::AllowNeedsNet { .. }) => &[Field::Net],
        _ => &[],
    }
}

fn is_list(field: Field) -> bool {
    monocore_rules::max_len(field, false).is_some()
}

#[cfg(test)]
mod tests;
