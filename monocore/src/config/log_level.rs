use std::{fmt, str::FromStr};

use super::serde_str::serde_via_str;
use crate::error::{LogLevelError, MonocoreError};

/// The VMM's log level.
///
/// Parses from a name (`info`, case-insensitive) or a number 0–5, and prints
/// its lowercase name.
///
/// ```
/// use monocore::vm::LogLevel;
/// assert_eq!("Info".parse::<LogLevel>()?, LogLevel::Info);
/// assert_eq!("5".parse::<LogLevel>()?, LogLevel::Trace);
/// assert_eq!(LogLevel::Warn as u32, 2);
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    /// No logging.
    #[default]
    Off = 0,
    /// Errors only.
    Error = 1,
    /// Warnings and errors.
    Warn = 2,
    /// Informational messages and above.
    Info = 3,
    /// Debug messages and above.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl LogLevel {
    /// Every level, from `Off` to `Trace`.
    pub const ALL: [LogLevel; 6] = [
        Self::Off,
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// The lowercase name (from `monocore_rules::LOG_LEVEL_NAMES`).
    pub fn name(self) -> &'static str {
        monocore_rules::LOG_LEVEL_NAMES
            .get(self as usize)
            .copied()
            .unwrap_or("off")
    }
}

impl TryFrom<u32> for LogLevel {
    type Error = MonocoreError;

    fn try_from(value: u32) -> Result<Self, MonocoreError> {
        Self::ALL
            .into_iter()
            .find(|l| *l as u32 == value)
            .ok_or_else(|| LogLevelError(value.to_string()).into())
    }
}

/// Parses a name (any case) or a number 0–5 with
/// `monocore_rules::log_level_number`, the rule the `vm!` macro also uses.
impl FromStr for LogLevel {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        monocore_rules::log_level_number(s)
            .and_then(|n| Self::try_from(n).ok())
            .ok_or_else(|| LogLevelError(s.to_owned()).into())
    }
}

impl LogLevel {
    /// The level of an `env_logger` record header (`ERROR`, `WARN`, `INFO`,
    /// `DEBUG`, `TRACE`: the names in upper case), as the VMM's log lines
    /// carry it. `None` for anything else (`OFF` is not a record's level).
    pub(crate) fn of_record(name: &str) -> Option<Self> {
        if name.bytes().any(|b| b.is_ascii_lowercase()) || name.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        name.parse().ok().filter(|level| *level != Self::Off)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

serde_via_str!(LogLevel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_levels_are_the_upper_case_names() {
        assert_eq!(LogLevel::of_record("ERROR"), Some(LogLevel::Error));
        assert_eq!(LogLevel::of_record("TRACE"), Some(LogLevel::Trace));
        for not_a_record in ["OFF", "error", "3", "", "LOUD"] {
            assert_eq!(LogLevel::of_record(not_a_record), None, "{not_a_record}");
        }
    }

    #[test]
    fn numbers_match_libkrun() {
        let numbers: Vec<u32> = LogLevel::ALL.iter().map(|l| *l as u32).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn parses_names_and_numbers_and_round_trips() {
        for level in LogLevel::ALL {
            assert_eq!(level.to_string().parse::<LogLevel>().unwrap(), level);
            assert_eq!(
                (level as u32).to_string().parse::<LogLevel>().unwrap(),
                level
            );
            assert_eq!(LogLevel::try_from(level as u32).unwrap(), level);
        }
        assert_eq!("TRACE".parse::<LogLevel>().unwrap(), LogLevel::Trace);
        assert!(
            matches!("6".parse::<LogLevel>(), Err(MonocoreError::InvalidLogLevel(LogLevelError(s))) if s == "6")
        );
        assert!(matches!(
            "loud".parse::<LogLevel>(),
            Err(MonocoreError::InvalidLogLevel(_))
        ));
    }
}
