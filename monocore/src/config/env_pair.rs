use std::{fmt, str::FromStr};

use super::serde_str::serde_via_str;
use crate::error::MonocoreError;

/// An environment variable for the guest command.
///
/// String form: `NAME=value`. The name is non-empty and holds no `=` or NUL;
/// the value may be empty and may hold `=`.
///
/// ```
/// use monocore::config::EnvPair;
/// let var: EnvPair = "PATH=/bin:/usr/bin".parse()?;
/// assert_eq!(var.get_name(), "PATH");
/// assert_eq!(var.get_value(), "/bin:/usr/bin");
/// assert!("=oops".parse::<EnvPair>().is_err());
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
#[derive(Debug, Hash, Clone, PartialEq, Eq)]
pub struct EnvPair {
    name: String,
    value: String,
}

impl EnvPair {
    /// Makes a pair without checking it; [`MicroVmConfig::validate`] checks
    /// the name later. Use [`EnvPair::try_new`] to check at once.
    ///
    /// [`MicroVmConfig::validate`]: crate::config::MicroVmConfig::validate
    pub fn new<S: Into<String>>(name: S, value: S) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Makes a pair, checking the name and value now.
    pub fn try_new(
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MonocoreError> {
        let pair = Self {
            name: name.into(),
            value: value.into(),
        };
        // Parsing the string form applies exactly the string-form rules.
        if let Err(kind) = monocore_rules::check_env_name(&pair.name) {
            return Err(crate::error::InvalidMicroVmConfigError::rule(
                monocore_rules::Field::Env.whole(),
                monocore_rules::RuleError::EnvName {
                    name: pair.name,
                    kind,
                },
            )
            .into());
        }
        pair.to_string().parse()
    }

    /// The variable's name.
    pub fn get_name(&self) -> &String {
        &self.name
    }

    /// The variable's value.
    pub fn get_value(&self) -> &String {
        &self.value
    }
}

impl FromStr for EnvPair {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = monocore_rules::parse_env_pair(s)?;
        Ok(Self::new(name, value))
    }
}

impl fmt::Display for EnvPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

serde_via_str!(EnvPair);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvPairErrorKind;

    #[test]
    fn value_may_be_empty_or_hold_equals() {
        let e: EnvPair = "VAR=".parse().unwrap();
        assert_eq!((e.get_name().as_str(), e.get_value().as_str()), ("VAR", ""));
        let e: EnvPair = "A=b=c".parse().unwrap();
        assert_eq!(e.get_value(), "b=c");
    }

    #[test]
    fn parse_errors_are_typed() {
        for (input, kind) in [
            ("VAR", EnvPairErrorKind::MissingEquals),
            ("=VALUE", EnvPairErrorKind::EmptyName),
            ("A\0=1", EnvPairErrorKind::ContainsNul),
        ] {
            match input.parse::<EnvPair>() {
                Err(MonocoreError::InvalidEnvPair(e)) => assert_eq!(e.kind, kind, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn try_new_checks_the_name() {
        assert!(EnvPair::try_new("A", "1").is_ok());
        assert!(matches!(
            EnvPair::try_new("A=B", "1"),
            Err(MonocoreError::InvalidMicroVmConfig(ref e)) if matches!(e.rule_error(), Some(monocore_rules::RuleError::EnvName { name, .. }) if name == "A=B")
        ));
        assert!(matches!(
            EnvPair::try_new("", "1"),
            Err(MonocoreError::InvalidMicroVmConfig(_))
        ));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let e = EnvPair::new("K", "V");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"K=V\"");
        assert_eq!(serde_json::from_str::<EnvPair>("\"K=V\"").unwrap(), e);
    }
}
