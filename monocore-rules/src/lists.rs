//! Rules over whole lists: their lengths, the mapped directories (paths,
//! mount points, overlap), the port map (zero ports, a port mapped twice,
//! networking) and the resource limits (soft ≤ hard, a resource twice).
//!
//! Each takes the entries that parsed and returns every error with the index
//! of the entry at fault, so a front end that could not parse some entries
//! (a `vm!` expression, a TOML string that is not a pair) still gets the
//! checks over the rest: it passes the parsed entries with their own
//! indices.

use std::net::Ipv4Addr;

use crate::error::RuleError;
use crate::guest_path::{find_overlap, normalize_mount_point};
use crate::limits::{MAX_ARGS, MAX_ENV_VARS, MAX_PORT_MAPPINGS, MAX_RLIMITS, max_mapped_dirs};
use crate::pair::check_path_pair_parts;
use crate::value::{check_host_path, find_duplicates};
use crate::{Field, check_soft_hard};

/// The most entries list `field` may hold (`None` for a field that is not
/// a list). `networking` is whether `local_only` is false: networking takes
/// one of the mapped directories' interrupt lines.
pub fn max_len(field: Field, networking: bool) -> Option<usize> {
    Some(match field {
        Field::Args => MAX_ARGS,
        Field::Env => MAX_ENV_VARS,
        Field::MappedDirs => max_mapped_dirs(networking),
        Field::PortMap => MAX_PORT_MAPPINGS,
        Field::Rlimits => MAX_RLIMITS,
        _ => return None,
    })
}

/// Checks the length of list `field` (see [`max_len`]).
///
/// ```
/// use monocore_rules::{check_len, Field};
/// assert!(check_len(Field::Rlimits, 16, false).is_ok());
/// assert!(check_len(Field::Rlimits, 17, false).is_err());
/// ```
pub fn check_len(field: Field, count: usize, networking: bool) -> Result<(), RuleError> {
    match max_len(field, networking) {
        Some(max) if count > max => Err(RuleError::TooMany { field, count, max }),
        _ => Ok(()),
    }
}

/// Checks the length of list `field` whatever `local_only` is (when it is
/// not known yet): too long only if it is too long with networking and
/// without.
///
/// ```
/// use monocore_rules::{check_len_either_way, Field};
/// assert!(check_len_either_way(Field::Args, 4096).is_ok());
/// assert!(check_len_either_way(Field::Args, 4097).is_err());
/// ```
pub fn check_len_either_way(field: Field, count: usize) -> Result<(), RuleError> {
    check_len(field, count, false).or_else(|_| check_len(field, count, true))
}

/// Checks mapped directories given as `(index, host, guest)`: each host
/// path, the `:` rule, each mount point, and then that no two of the valid
/// mount points overlap. Returns `(index, error)` for every problem, in
/// index order.
///
/// ```
/// use monocore_rules::check_mapped_dirs;
/// let errors = check_mapped_dirs(&[(0, "a", "/x"), (1, "b", "rel"), (2, "c", "/x/y")]);
/// assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2]);
/// ```
pub fn check_mapped_dirs(dirs: &[(usize, &str, &str)]) -> Vec<(usize, RuleError)> {
    let mut errors = Vec::new();
    let mut mounts: Vec<(usize, String)> = Vec::with_capacity(dirs.len());
    for &(index, host, guest) in dirs {
        let checked = check_host_path(host)
            .map_err(RuleError::from)
            .and_then(|()| {
                check_path_pair_parts(host, guest).map_err(|_| RuleError::MappedDirColon {
                    pair: format!("{host}:{guest}"),
                })
            })
            .and_then(|()| normalize_mount_point(guest).map_err(RuleError::from));
        match checked {
            Ok(mount) => mounts.push((index, mount)),
            Err(e) => errors.push((index, e)),
        }
    }
    let paths: Vec<&str> = mounts.iter().map(|(_, m)| m.as_str()).collect();
    if let Some((i, j)) = find_overlap(&paths)
        && let (Some((first_index, _)), Some((index, _))) = (mounts.get(i), mounts.get(j))
    {
        let guest_of = |k: usize| {
            dirs.iter()
                .find(|d| d.0 == k)
                .map(|d| d.2.to_owned())
                .unwrap_or_default()
        };
        errors.push((
            *index,
            RuleError::GuestPathsOverlap {
                guest: guest_of(*index),
                first: guest_of(*first_index),
                first_index: *first_index,
            },
        ));
    }
    errors.sort_by_key(|e| e.0);
    errors
}

/// Checks port mappings given as `(index, host, guest)`: no port 0, no host
/// port and no guest port mapped twice (libkrun's port map refuses both).
/// Returns `(index, error)` for every problem, in index order.
///
/// ```
/// use monocore_rules::check_port_map;
/// let errors = check_port_map(&[(0, 8080, 80), (1, 8081, 80)]);
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors[0].0, 1);
/// ```
pub fn check_port_map(ports: &[(usize, u16, u16)]) -> Vec<(usize, RuleError)> {
    let mut errors = Vec::new();
    let valid: Vec<&(usize, u16, u16)> = ports
        .iter()
        .filter(|(index, host, guest)| {
            let zero = *host == 0 || *guest == 0;
            if zero {
                errors.push((
                    *index,
                    RuleError::PortZero {
                        pair: format!("{host}:{guest}"),
                    },
                ));
            }
            !zero
        })
        .collect();
    let hosts: Vec<u16> = valid.iter().map(|p| p.1).collect();
    let guests: Vec<u16> = valid.iter().map(|p| p.2).collect();
    for (first, repeat) in find_duplicates(&hosts) {
        if let (Some(first), Some(repeat)) = (valid.get(first), valid.get(repeat)) {
            errors.push((
                repeat.0,
                RuleError::DuplicateHostPort {
                    port: repeat.1,
                    first_index: first.0,
                },
            ));
        }
    }
    for (first, repeat) in find_duplicates(&guests) {
        if let (Some(first), Some(repeat)) = (valid.get(first), valid.get(repeat)) {
            errors.push((
                repeat.0,
                RuleError::DuplicateGuestPort {
                    port: repeat.2,
                    first_index: first.0,
                },
            ));
        }
    }
    errors.sort_by_key(|e| e.0);
    errors
}

/// Checks that a port map has networking to go through: with `local_only`
/// true, the first mapping `first` (as `host:guest`) is an error.
///
/// ```
/// use monocore_rules::check_networking;
/// assert!(check_networking(true, Some("8080:80")).is_err());
/// assert!(check_networking(false, Some("8080:80")).is_ok());
/// assert!(check_networking(true, None).is_ok());
/// ```
pub fn check_networking(local_only: bool, first: Option<&str>) -> Result<(), RuleError> {
    match first {
        Some(pair) if local_only => Err(RuleError::PortMapNeedsNetworking {
            pair: pair.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks a guest IPv4 address: libkrun 1.19.7 cannot set one, so any is an
/// error.
pub fn check_ip(ip: Ipv4Addr) -> Result<(), RuleError> {
    Err(RuleError::IpUnsupported { ip })
}

/// Checks resource limits given as `(index, resource, soft, hard)`: soft ≤
/// hard, and each resource once. Returns `(index, error)` for every
/// problem, in index order.
pub fn check_rlimits(limits: &[(usize, u32, u64, u64)]) -> Vec<(usize, RuleError)> {
    let mut errors: Vec<(usize, RuleError)> = limits
        .iter()
        .filter_map(|&(index, resource, soft, hard)| {
            check_soft_hard(soft, hard).err().map(|_| {
                (
                    index,
                    RuleError::SoftExceedsHard {
                        resource,
                        soft,
                        hard,
                    },
                )
            })
        })
        .collect();
    let resources: Vec<u32> = limits.iter().map(|l| l.1).collect();
    for (first, repeat) in find_duplicates(&resources) {
        if let (Some(first), Some(repeat)) = (limits.get(first), limits.get(repeat)) {
            errors.push((
                repeat.0,
                RuleError::DuplicateRlimit {
                    resource: repeat.1,
                    first_index: first.0,
                },
            ));
        }
    }
    errors.sort_by_key(|e| e.0);
    errors
}

/// The `RLIMIT_STACK` soft limit among `(resource, soft)` pairs: what the
/// guest command is executed with (see [`crate::check_command_size`]).
pub fn stack_soft_limit(limits: impl IntoIterator<Item = (u32, u64)>) -> Option<u64> {
    const RLIMIT_STACK: u32 = 3;
    limits
        .into_iter()
        .find(|(resource, _)| *resource == RLIMIT_STACK)
        .map(|(_, soft)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GuestPathError;

    #[test]
    fn overlap_is_checked_over_the_mount_points_that_are_valid() {
        let errors = check_mapped_dirs(&[(0, "a", "/app"), (1, "b", "rel"), (3, "c", "/app/x")]);
        assert_eq!(
            errors,
            [
                (
                    1,
                    RuleError::GuestPath(GuestPathError::NotAbsolute("rel".into()))
                ),
                (
                    3,
                    RuleError::GuestPathsOverlap {
                        guest: "/app/x".into(),
                        first: "/app".into(),
                        first_index: 0
                    }
                )
            ]
        );
    }

    #[test]
    fn host_and_guest_ports_are_each_mapped_once() {
        let errors = check_port_map(&[(0, 80, 80), (1, 80, 81), (2, 82, 80), (4, 0, 1)]);
        assert_eq!(
            errors,
            [
                (
                    1,
                    RuleError::DuplicateHostPort {
                        port: 80,
                        first_index: 0
                    }
                ),
                (
                    2,
                    RuleError::DuplicateGuestPort {
                        port: 80,
                        first_index: 0
                    }
                ),
                (4, RuleError::PortZero { pair: "0:1".into() }),
            ]
        );
    }

    #[test]
    fn rlimits_soft_hard_and_duplicates() {
        let errors = check_rlimits(&[(0, 7, 1, 2), (1, 7, 3, 2)]);
        assert_eq!(
            errors,
            [
                (
                    1,
                    RuleError::SoftExceedsHard {
                        resource: 7,
                        soft: 3,
                        hard: 2
                    }
                ),
                (
                    1,
                    RuleError::DuplicateRlimit {
                        resource: 7,
                        first_index: 0
                    }
                )
            ]
        );
        assert_eq!(stack_soft_limit([(7, 1), (3, 99)]), Some(99));
        assert_eq!(stack_soft_limit([(7, 1)]), None);
    }

    #[test]
    fn lengths_and_messages() {
        let e = check_len(Field::MappedDirs, 7, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("too many mapped_dirs: 7 given, at most")
        );
        assert_eq!(e.fix(), Some(crate::Fix::FewerMappedDirs));
        assert!(check_len(Field::Ram, usize::MAX, false).is_ok());
        assert_eq!(
            check_networking(true, Some("8080:80")).unwrap_err().fix(),
            Some(crate::Fix::EnableNetworking)
        );
    }
}
