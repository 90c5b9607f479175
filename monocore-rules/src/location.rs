//! Where in a config a problem is: the field, and for a list the index.
//!
//! Every rule error is reported with a [`ConfigPath`], as serde's errors
//! carry a path: each front end maps it to its own place (a token for
//! `vm!`, a line and column for a TOML file, a flag for the command line),
//! never by searching the message's text.

use core::fmt;

/// A config field, named by its key (the `vm!` and TOML key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `root` (`root_path`).
    Root,
    /// `ram` (`ram_mib`).
    Ram,
    /// `vcpus` (`num_vcpus`).
    Vcpus,
    /// `exec` (`exec_path`).
    Exec,
    /// `args`.
    Args,
    /// `env`.
    Env,
    /// `workdir` (`workdir_path`).
    Workdir,
    /// `mapped_dirs`.
    MappedDirs,
    /// `port_map`.
    PortMap,
    /// `rlimits`.
    Rlimits,
    /// `console` (`console_output`).
    Console,
    /// `ip` (`assigned_ip`).
    Ip,
    /// `local_only`.
    LocalOnly,
    /// `log_level`.
    LogLevel,
}

impl Field {
    /// Every field, in the order of [`crate::keys::VM_KEYS`].
    pub const ALL: [Field; 14] = [
        Field::Root,
        Field::Ram,
        Field::Vcpus,
        Field::Exec,
        Field::Args,
        Field::Env,
        Field::Workdir,
        Field::MappedDirs,
        Field::PortMap,
        Field::Rlimits,
        Field::Console,
        Field::Ip,
        Field::LocalOnly,
        Field::LogLevel,
    ];

    /// The key, as `vm!` and a TOML file spell it.
    pub const fn key(self) -> &'static str {
        match self {
            Field::Root => "root",
            Field::Ram => "ram",
            Field::Vcpus => "vcpus",
            Field::Exec => "exec",
            Field::Args => "args",
            Field::Env => "env",
            Field::Workdir => "workdir",
            Field::MappedDirs => "mapped_dirs",
            Field::PortMap => "port_map",
            Field::Rlimits => "rlimits",
            Field::Console => "console",
            Field::Ip => "ip",
            Field::LocalOnly => "local_only",
            Field::LogLevel => "log_level",
        }
    }

    /// The field of that key.
    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }

    /// This field, as a whole.
    pub const fn whole(self) -> ConfigPath {
        ConfigPath {
            field: self,
            index: None,
        }
    }

    /// Element `index` of this list field.
    pub const fn at(self, index: usize) -> ConfigPath {
        ConfigPath {
            field: self,
            index: Some(index),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A place in a config: a field, and for a list field the element's index.
///
/// ```
/// use monocore_rules::{ConfigPath, Field};
/// assert_eq!(Field::MappedDirs.at(1).to_string(), "mapped_dirs[1]");
/// assert_eq!(Field::Ram.whole().to_string(), "ram");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigPath {
    /// The field.
    pub field: Field,
    /// The element of a list field, if the problem is with one element.
    pub index: Option<usize>,
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "{}[{index}]", self.field),
            None => write!(f, "{}", self.field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_the_config_keys_in_order() {
        let keys: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        let table: Vec<&str> = crate::keys::VM_KEYS.iter().map(|k| k.0).collect();
        assert_eq!(keys, table);
        for field in Field::ALL {
            assert_eq!(Field::from_key(field.key()), Some(field));
        }
        assert_eq!(Field::from_key("ram_mib"), None);
    }
}
