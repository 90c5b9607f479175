//! Where in a config a problem is: the field, and for a list the index.
//!
//! Every rule error is reported with a [`ConfigPath`], as serde's errors
//! carry a path: each front end maps it to its own place (a token for
//! `vm!`, a line and column for a TOML file, a flag for the command line),
//! never by searching the message's text.
//!
//! [`Field`] is also the one table of config keys: each key with the
//! `MicroVmConfig` field it sets and whether it is required. Everything
//! else that lists the keys (the `vm!` macro, the TOML loader, the "did you
//! mean" hints of [`crate::keys`]) reads it from here.

use core::fmt;

/// Declares [`Field`] and its table from one list of
/// `Variant { key, field, required }` rows.
macro_rules! fields {
    ($($variant:ident { key: $key:literal, field: $name:literal, required: $required:literal },)*) => {
        /// A config field, named by its key (the `vm!` and TOML key).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field {
            $(
                #[doc = concat!("`", $key, "` (`MicroVmConfig::", $name, "`).")]
                $variant,
            )*
        }

        impl Field {
            /// Every field, in config order: the order in which errors are
            /// reported.
            pub const ALL: [Field; [$($key),*].len()] = [$(Field::$variant),*];

            /// The key, as `vm!`, a TOML file and the `--dry-run` JSON spell it.
            pub const fn key(self) -> &'static str {
                match self {
                    $(Field::$variant => $key,)*
                }
            }

            /// The name of the `MicroVmConfig` field this key sets.
            pub const fn field_name(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)*
                }
            }

            /// Whether a config must give this key.
            pub const fn required(self) -> bool {
                match self {
                    $(Field::$variant => $required,)*
                }
            }
        }
    };
}

fields! {
    Root { key: "root", field: "root_path", required: true },
    Ram { key: "ram", field: "ram_mib", required: true },
    Vcpus { key: "vcpus", field: "num_vcpus", required: false },
    Exec { key: "exec", field: "exec_path", required: false },
    Args { key: "args", field: "args", required: false },
    Env { key: "env", field: "env", required: false },
    Workdir { key: "workdir", field: "workdir_path", required: false },
    MappedDirs { key: "mapped_dirs", field: "mapped_dirs", required: false },
    PortMap { key: "port_map", field: "port_map", required: false },
    Net { key: "net", field: "net", required: false },
    Allow { key: "allow", field: "allow", required: false },
    Rlimits { key: "rlimits", field: "rlimits", required: false },
    Console { key: "console", field: "console_output", required: false },
    Ip { key: "ip", field: "assigned_ip", required: false },
    LocalOnly { key: "local_only", field: "local_only", required: false },
    LogLevel { key: "log_level", field: "log_level", required: false },
}

impl Field {
    /// The field of that key.
    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The keys that must be present, in config order.
    pub fn required_fields() -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(|f| f.required())
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
        assert_eq!(keys[..3], ["root", "ram", "vcpus"]);
        assert_eq!(keys.len(), 16);
        assert_eq!(keys[8..11], ["port_map", "net", "allow"]);
        for field in Field::ALL {
            assert_eq!(Field::from_key(field.key()), Some(field));
        }
        assert_eq!(Field::from_key("ram_mib"), None);
        assert_eq!(Field::Ram.field_name(), "ram_mib");
        assert_eq!(
            Field::required_fields().collect::<Vec<_>>(),
            [Field::Root, Field::Ram]
        );
        // `ALL` is in declaration order, which `Ord` (and so error order) follows.
        assert!(Field::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
