//! The resource-limit string form: `RLIMIT_NOFILE=1024:2048`, or the resource
//! as its number (`7=1024:2048`, the form libkrun reads).

use crate::pair::{Excerpt, parse_decimal};

/// The Linux resource names, indexed by resource number.
pub const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// A string that is not a valid resource limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource limit {}: {kind}", Excerpt(input))]
pub struct RlimitError {
    /// The whole input that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub kind: RlimitErrorKind,
}

/// What was wrong with a resource limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RlimitErrorKind {
    /// Not of the form `RESOURCE=soft:hard`.
    #[error("expected `RLIMIT_NAME=soft:hard` (such as `RLIMIT_NOFILE=1024:2048`)")]
    Format,
    /// The resource is neither a known `RLIMIT_*` name nor a number 0–15.
    #[error("unknown resource {}: expected an `RLIMIT_*` name or a number from 0 to 15", Excerpt(.0))]
    UnknownResource(String),
    /// A limit that is not a non-negative 64-bit number.
    #[error("{} is not a limit: expected a number from 0 to 18446744073709551615", Excerpt(.0))]
    InvalidValue(String),
    /// The soft limit exceeds the hard limit.
    #[error("the soft limit {soft} exceeds the hard limit {hard}")]
    SoftExceedsHard {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

/// The resource number for an `RLIMIT_*` name or a decimal number 0–15.
pub fn rlimit_resource(name_or_number: &str) -> Option<u32> {
    if let Some(n) = parse_decimal::<u32>(name_or_number) {
        return (n < 16).then_some(n);
    }
    RLIMIT_NAMES
        .iter()
        .position(|&name| name == name_or_number)
        .and_then(|i| u32::try_from(i).ok())
}

/// The `RLIMIT_*` name of a resource number.
pub fn rlimit_name(resource: u32) -> Option<&'static str> {
    RLIMIT_NAMES.get(usize::try_from(resource).ok()?).copied()
}

/// Checks that a soft limit does not exceed its hard limit.
///
/// ```
/// use monocore_rules::check_soft_hard;
/// assert!(check_soft_hard(1024, 2048).is_ok());
/// assert!(check_soft_hard(4096, 1024).is_err());
/// ```
pub fn check_soft_hard(soft: u64, hard: u64) -> Result<(), RlimitErrorKind> {
    if soft > hard {
        return Err(RlimitErrorKind::SoftExceedsHard { soft, hard });
    }
    Ok(())
}

/// Parses `RESOURCE=soft:hard` into `(resource number, soft, hard)`.
///
/// ```
/// use monocore_rules::parse_rlimit;
/// assert_eq!(parse_rlimit("RLIMIT_NOFILE=1024:2048").unwrap(), (7, 1024, 2048));
/// assert_eq!(parse_rlimit("7=1024:2048").unwrap(), (7, 1024, 2048));
/// assert!(parse_rlimit("RLIMIT_NOFILE=4096:1024").is_err());
/// ```
pub fn parse_rlimit(s: &str) -> Result<(u32, u64, u64), RlimitError> {
    let err = |kind| RlimitError {
        input: s.to_owned(),
        kind,
    };
    let (resource, limits) = s
        .split_once('=')
        .ok_or_else(|| err(RlimitErrorKind::Format))?;
    let resource = rlimit_resource(resource)
        .ok_or_else(|| err(RlimitErrorKind::UnknownResource(resource.to_owned())))?;
    let (soft, hard) = limits
        .split_once(':')
        .ok_or_else(|| err(RlimitErrorKind::Format))?;
    let value = |part: &str| {
        parse_decimal::<u64>(part)
            .ok_or_else(|| err(RlimitErrorKind::InvalidValue(part.to_owned())))
    };
    let (soft, hard) = (value(soft)?, value(hard)?);
    check_soft_hard(soft, hard).map_err(err)?;
    Ok((resource, soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> RlimitErrorKind {
        parse_rlimit(s).unwrap_err().kind
    }

    #[test]
    fn names_and_numbers_are_both_accepted() {
        for (i, name) in RLIMIT_NAMES.iter().enumerate() {
            let n = u32::try_from(i).unwrap();
            assert_eq!(rlimit_resource(name), Some(n));
            assert_eq!(rlimit_resource(&i.to_string()), Some(n));
            assert_eq!(rlimit_name(n), Some(*name));
        }
        assert_eq!(rlimit_resource("16"), None);
        assert_eq!(rlimit_resource("rlimit_nofile"), None);
        assert_eq!(rlimit_name(16), None);
        assert_eq!(
            parse_rlimit("RLIMIT_AS=0:18446744073709551615").unwrap(),
            (9, 0, u64::MAX)
        );
    }

    #[test]
    fn every_error_kind() {
        assert_eq!(kind("RLIMIT_NOFILE"), RlimitErrorKind::Format);
        assert_eq!(kind("RLIMIT_NOFILE=10"), RlimitErrorKind::Format);
        assert_eq!(
            kind("RLIMIT_BOGUS=1:2"),
            RlimitErrorKind::UnknownResource("RLIMIT_BOGUS".into())
        );
        assert_eq!(
            kind("16=1:2"),
            RlimitErrorKind::UnknownResource("16".into())
        );
        assert_eq!(
            kind("RLIMIT_CPU=10:"),
            RlimitErrorKind::InvalidValue("".into())
        );
        assert_eq!(
            kind("RLIMIT_CPU=:20"),
            RlimitErrorKind::InvalidValue("".into())
        );
        assert_eq!(
            kind("RLIMIT_CPU=-1:20"),
            RlimitErrorKind::InvalidValue("-1".into())
        );
        assert_eq!(
            kind("RLIMIT_CPU=1:2:3"),
            RlimitErrorKind::InvalidValue("2:3".into())
        );
        assert_eq!(
            kind("RLIMIT_NOFILE=2048:1024"),
            RlimitErrorKind::SoftExceedsHard {
                soft: 2048,
                hard: 1024
            }
        );
    }

    #[test]
    fn message_names_the_value() {
        assert_eq!(
            parse_rlimit("RLIMIT_NOFILE=2048:1024")
                .unwrap_err()
                .to_string(),
            "invalid resource limit \"RLIMIT_NOFILE=2048:1024\": the soft limit 2048 exceeds the hard limit 1024"
        );
    }
}
