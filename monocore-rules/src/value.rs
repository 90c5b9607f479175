//! Rules for single configuration values: the RAM size, the vCPU count, host
//! paths (the root among them), the IPv4 address form, log level names, and
//! finding duplicate keys in a list.
//!
//! The numeric checks take an `i128` so that the `vm!` macro and the TOML
//! loader can pass any integer they read (which may be negative or not fit
//! the field) through the same function that run-time validation calls with
//! the field's value.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::limits::{MAX_PATH_LEN, MAX_VCPUS};
use crate::pair::Excerpt;

/// A number outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The value is 0, and at least 1 is required.
    #[error("{what} is 0: at least 1 is required")]
    Zero {
        /// What the number is (`ram` in MiB, `vcpus`).
        what: &'static str,
    },
    /// The value is negative, and at least 1 is required.
    #[error("{what} is {value}: at least 1 is required")]
    Negative {
        /// What the number is.
        what: &'static str,
        /// The value given.
        value: i128,
    },
    /// The value is above the largest allowed.
    #[error("{what} is {value}: at most {max} is allowed")]
    TooLarge {
        /// What the number is.
        what: &'static str,
        /// The value given.
        value: i128,
        /// The largest allowed value.
        max: i128,
    },
}

fn in_range(what: &'static str, value: i128, max: i128) -> Result<(), RangeError> {
    if value < 0 {
        Err(RangeError::Negative { what, value })
    } else if value == 0 {
        Err(RangeError::Zero { what })
    } else if value > max {
        Err(RangeError::TooLarge { what, value, max })
    } else {
        Ok(())
    }
}

/// Checks a guest RAM size in MiB: 1 to `u32::MAX`.
///
/// ```
/// use monocore_rules::{check_ram_mib, RangeError};
/// assert_eq!(check_ram_mib(1024), Ok(1024));
/// assert!(matches!(check_ram_mib(0), Err(RangeError::Zero { .. })));
/// assert!(matches!(check_ram_mib(1 << 32), Err(RangeError::TooLarge { .. })));
/// ```
pub fn check_ram_mib(value: i128) -> Result<u32, RangeError> {
    in_range("ram (MiB)", value, i128::from(u32::MAX))?;
    u32::try_from(value).map_err(|_| RangeError::TooLarge {
        what: "ram (MiB)",
        value,
        max: i128::from(u32::MAX),
    })
}

/// Checks a vCPU count: 1 to [`MAX_VCPUS`] (128 on x86_64).
///
/// ```
/// use monocore_rules::check_num_vcpus;
/// assert_eq!(check_num_vcpus(2), Ok(2));
/// assert!(check_num_vcpus(0).is_err());
/// assert!(check_num_vcpus(-1).is_err());
/// assert!(check_num_vcpus(256).is_err());
/// ```
pub fn check_num_vcpus(value: i128) -> Result<u8, RangeError> {
    in_range("vcpus", value, i128::from(MAX_VCPUS))?;
    u8::try_from(value).map_err(|_| RangeError::TooLarge {
        what: "vcpus",
        value,
        max: i128::from(MAX_VCPUS),
    })
}

/// Why a host path (a mapped directory's host side, the console file) was
/// rejected. Whether it exists is a run-time question, not a rule here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPathError {
    /// The path is empty.
    #[error("host path is empty")]
    Empty,
    /// The path contains a NUL byte.
    #[error("host path {0:?} contains a NUL byte")]
    ContainsNul(String),
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("host path is {0} bytes long: at most {MAX_PATH_LEN} are allowed")]
    TooLong(usize),
    /// The path is not valid UTF-8, which libkrun requires (shown lossily).
    #[error("host path {0:?} is not valid UTF-8, which libkrun requires")]
    NotUtf8(String),
}

/// Checks a host path: non-empty, without NUL, at most [`MAX_PATH_LEN`] bytes.
///
/// ```
/// use monocore_rules::check_host_path;
/// assert!(check_host_path("/tmp/console.log").is_ok());
/// assert!(check_host_path("").is_err());
/// assert!(check_host_path("a\0b").is_err());
/// ```
pub fn check_host_path(path: &str) -> Result<(), HostPathError> {
    if path.is_empty() {
        Err(HostPathError::Empty)
    } else if path.contains('\0') {
        Err(HostPathError::ContainsNul(path.to_owned()))
    } else if path.len() > MAX_PATH_LEN {
        Err(HostPathError::TooLong(path.len()))
    } else {
        Ok(())
    }
}

/// Checks the root path: a host path (see [`check_host_path`]) in UTF-8,
/// which libkrun requires of every path it takes.
///
/// ```
/// use std::path::Path;
/// use monocore_rules::check_root_path;
/// assert!(check_root_path(Path::new("/srv/rootfs")).is_ok());
/// assert!(check_root_path(Path::new("")).is_err());
/// ```
pub fn check_root_path(root: &Path) -> Result<(), HostPathError> {
    match root.to_str() {
        Some(text) => check_host_path(text),
        None => Err(HostPathError::NotUtf8(root.to_string_lossy().into_owned())),
    }
}

/// A string that is not an IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid IPv4 address {}: expected four numbers from 0 to 255 separated by dots, such as \"10.0.0.2\"",
    Excerpt(input)
)]
pub struct Ipv4Error {
    /// The whole input.
    pub input: String,
}

/// Parses an IPv4 address in dotted-quad form (`Ipv4Addr`'s `FromStr`),
/// with the one wording every front end shows for one that is not.
///
/// ```
/// use monocore_rules::parse_ipv4;
/// assert_eq!(parse_ipv4("10.0.0.2").unwrap().octets(), [10, 0, 0, 2]);
/// assert_eq!(
///     parse_ipv4("10.0.0").unwrap_err().to_string(),
///     "invalid IPv4 address \"10.0.0\": expected four numbers from 0 to 255 separated by dots, such as \"10.0.0.2\""
/// );
/// ```
pub fn parse_ipv4(input: &str) -> Result<Ipv4Addr, Ipv4Error> {
    input.parse().map_err(|_| Ipv4Error {
        input: input.to_owned(),
    })
}

/// The VMM log level names, indexed by their libkrun number
/// (`off` = 0 … `trace` = 5).
pub const LOG_LEVEL_NAMES: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The libkrun number of a log level given by name (any case) or by number
/// 0–5.
///
/// ```
/// use monocore_rules::log_level_number;
/// assert_eq!(log_level_number("Info"), Some(3));
/// assert_eq!(log_level_number("5"), Some(5));
/// assert_eq!(log_level_number("loud"), None);
/// ```
pub fn log_level_number(name_or_number: &str) -> Option<u32> {
    LOG_LEVEL_NAMES
        .iter()
        .position(|name| {
            name.eq_ignore_ascii_case(name_or_number)
                || crate::pair::parse_decimal::<usize>(name_or_number)
                    .is_some_and(|n| LOG_LEVEL_NAMES.get(n) == Some(name))
        })
        .and_then(|i| u32::try_from(i).ok())
}

/// Every repeated key in `keys`, in O(n log n): for each key that occurs more
/// than once, the pairs `(first, repeat)` of original indices, ordered by
/// `repeat`.
///
/// Used for host ports (each mapped once) and resource limits (each resource
/// once).
///
/// ```
/// use monocore_rules::find_duplicates;
/// assert_eq!(find_duplicates(&[80, 443, 80, 8080, 80]), vec![(0, 2), (0, 4)]);
/// assert!(find_duplicates(&[1, 2, 3]).is_empty());
/// ```
pub fn find_duplicates<T: Ord>(keys: &[T]) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, &T)> = keys.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0)));
    let mut pairs = Vec::new();
    let mut first: Option<(usize, &T)> = None;
    for (index, key) in order {
        match first {
            Some((first_index, first_key)) if first_key == key => pairs.push((first_index, index)),
            _ => first = Some((index, key)),
        }
    }
    pairs.sort_unstable_by_key(|&(_, repeat)| repeat);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_bounds() {
        assert_eq!(check_ram_mib(1), Ok(1));
        assert_eq!(check_ram_mib(i128::from(u32::MAX)), Ok(u32::MAX));
        assert_eq!(
            check_ram_mib(0),
            Err(RangeError::Zero { what: "ram (MiB)" })
        );
        assert_eq!(
            check_ram_mib(i128::from(u32::MAX) + 1),
            Err(RangeError::TooLarge {
                what: "ram (MiB)",
                value: i128::from(u32::MAX) + 1,
                max: i128::from(u32::MAX)
            })
        );
        assert_eq!(
            check_ram_mib(-5).unwrap_err().to_string(),
            "ram (MiB) is -5: at least 1 is required"
        );
    }

    #[test]
    fn vcpu_bounds() {
        assert_eq!(check_num_vcpus(1), Ok(1));
        assert_eq!(check_num_vcpus(i128::from(MAX_VCPUS)), Ok(MAX_VCPUS));
        assert_eq!(check_num_vcpus(0), Err(RangeError::Zero { what: "vcpus" }));
        assert_eq!(
            check_num_vcpus(256).unwrap_err().to_string(),
            format!("vcpus is 256: at most {MAX_VCPUS} is allowed")
        );
    }

    #[test]
    fn host_paths() {
        assert_eq!(check_host_path("/x"), Ok(()));
        assert_eq!(check_host_path("rel/x"), Ok(()));
        assert_eq!(check_host_path(""), Err(HostPathError::Empty));
        assert_eq!(
            check_host_path("a\0"),
            Err(HostPathError::ContainsNul("a\0".into()))
        );
        let long = "x".repeat(MAX_PATH_LEN + 1);
        assert_eq!(
            check_host_path(&long),
            Err(HostPathError::TooLong(MAX_PATH_LEN + 1))
        );
    }

    #[test]
    fn log_levels_by_name_and_number() {
        for (i, name) in LOG_LEVEL_NAMES.iter().enumerate() {
            let n = u32::try_from(i).unwrap();
            assert_eq!(log_level_number(name), Some(n));
            assert_eq!(log_level_number(&name.to_uppercase()), Some(n));
            assert_eq!(log_level_number(&i.to_string()), Some(n));
        }
        assert_eq!(log_level_number("6"), None);
        assert_eq!(log_level_number(""), None);
        assert_eq!(log_level_number("+1"), None);
    }

    #[test]
    fn duplicates_pair_each_repeat_with_the_first() {
        assert_eq!(find_duplicates::<u8>(&[]), vec![]);
        assert_eq!(find_duplicates(&[5, 5]), vec![(0, 1)]);
        assert_eq!(
            find_duplicates(&[3, 1, 3, 1, 3]),
            vec![(0, 2), (1, 3), (0, 4)]
        );
    }
}
