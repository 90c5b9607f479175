//! Rules over whole lists: their lengths, the mapped directories (paths,
//! mount points, overlap), the port map (zero ports, a port mapped twice,
//! networking), the egress allow-list (an entry twice, `net`) and the
//! resource limits (soft ≤ hard, a resource twice).
//!
//! Each takes the entries that parsed and returns every error with the index
//! of the entry at fault, so a front end that could not parse some entries
//! (a `vm!` expression, a TOML string that is not a pair) still gets the
//! checks over the rest: it passes the parsed entries with their own
//! indices.

use std::net::Ipv4Addr;

use crate::egress::EgressRule;
use crate::error::RuleError;
use crate::guest_path::{find_overlap, normalize_mount_point};
use crate::limits::{
    MAX_ALLOW_ENTRIES, MAX_ARGS, MAX_ENV_VARS, MAX_PORT_MAPPINGS, MAX_RLIMITS, max_mapped_dirs,
};
use crate::pair::check_path_pair_parts;
use crate::value::{check_host_path, find_duplicates};
use crate::{Field, check_soft_hard};

/// The most entries list `field` may hold (`None` for a field that is not
/// a list). `net` is whether `net` is on: its network device takes one of
/// the mapped directories' interrupt lines.
pub fn max_len(field: Field, net: bool) -> Option<usize> {
    Some(match field {
        Field::Args => MAX_ARGS,
        Field::Env => MAX_ENV_VARS,
        Field::MappedDirs => max_mapped_dirs(net),
        Field::PortMap => MAX_PORT_MAPPINGS,
        Field::Allow => MAX_ALLOW_ENTRIES,
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
pub fn check_len(field: Field, count: usize, net: bool) -> Result<(), RuleError> {
    match max_len(field, net) {
        Some(max) if count > max => Err(RuleError::TooMany { field, count, max }),
        _ => Ok(()),
    }
}

/// Checks the length of list `field` whatever `net` is (when it is not
/// known yet): too long only if it is too long with `net` and without.
///
/// ```
/// use monocore_rules::{check_len_either_way, Field};
/// assert!(check_len_either_way(Field::Args, 4096).is_ok());
/// assert!(check_len_either_way(Field::Args, 4097).is_err());
/// ```
pub fn check_len_either_way(field: Field, count: usize) -> Result<(), RuleError> {
    // Too long either way: the error names the larger limit, without `net`.
    check_len(field, count, true).or_else(|_| check_len(field, count, false))
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

/// Checks that a port map has networking to go through, `net` or TSI
/// (`local_only` false): with neither, the first mapping `first` (as
/// `host:guest`) is an error.
///
/// ```
/// use monocore_rules::check_networking;
/// // (net, local_only, first mapping)
/// assert!(check_networking(false, true, Some("8080:80")).is_err());
/// assert!(check_networking(true, true, Some("8080:80")).is_ok());
/// assert!(check_networking(false, false, Some("8080:80")).is_ok());
/// assert!(check_networking(false, true, None).is_ok());
/// ```
pub fn check_networking(net: bool, local_only: bool, first: Option<&str>) -> Result<(), RuleError> {
    match first {
        Some(pair) if !net && local_only => Err(RuleError::PortMapNeedsNetworking {
            pair: pair.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks that `net` and TSI (`local_only` false) are not both on: TSI
/// would let the guest around `net`'s allow-list.
///
/// ```
/// use monocore_rules::check_net_with_tsi;
/// // (net, local_only)
/// assert!(check_net_with_tsi(true, false).is_err());
/// assert!(check_net_with_tsi(true, true).is_ok());
/// assert!(check_net_with_tsi(false, false).is_ok());
/// ```
pub fn check_net_with_tsi(net: bool, local_only: bool) -> Result<(), RuleError> {
    if net && !local_only {
        return Err(RuleError::NetWithTsi);
    }
    Ok(())
}

/// Checks that an allow-list has `net` to open: with `net` false, the
/// first entry `first` is an error.
///
/// ```
/// use monocore_rules::check_allow_needs_net;
/// assert!(check_allow_needs_net(false, Some("pypi.org:443")).is_err());
/// assert!(check_allow_needs_net(true, Some("pypi.org:443")).is_ok());
/// assert!(check_allow_needs_net(false, None).is_ok());
/// ```
pub fn check_allow_needs_net(net: bool, first: Option<&str>) -> Result<(), RuleError> {
    match first {
        Some(entry) if !net => Err(RuleError::AllowNeedsNet {
            entry: entry.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks allow-list entries given as `(index, rule)`: no entry twice (the
/// same rule, however it was written). Returns `(index, error)` for every
/// repeat, in index order.
///
/// ```
/// use monocore_rules::{check_allow, egress::parse_egress_rule};
/// let a = parse_egress_rule("pypi.org:443")?;
/// let b = parse_egress_rule("PyPI.org.:443")?;
/// let errors = check_allow(&[(0, &a), (2, &b)]);
/// assert_eq!(errors.len(), 1);
/// assert_eq!(errors[0].0, 2);
/// # Ok::<(), monocore_rules::egress::EgressRuleError>(())
/// ```
pub fn check_allow(rules: &[(usize, &EgressRule)]) -> Vec<(usize, RuleError)> {
    let keys: Vec<&EgressRule> = rules.iter().map(|r| r.1).collect();
    find_duplicates(&keys)
        .into_iter()
        .filter_map(|(first, repeat)| {
            let (first, repeat) = (rules.get(first)?, rules.get(repeat)?);
            Some((
                repeat.0,
                RuleError::DuplicateAllow {
                    entry: repeat.1.to_string(),
                    first_index: first.0,
                },
            ))
        })
        .collect()
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
            check_networking(false, true, Some("8080:80"))
                .unwrap_err()
                .fix(),
            Some(crate::Fix::EnableNetworking)
        );
        let e = check_len(Field::Allow, MAX_ALLOW_ENTRIES + 1, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too many allow: 65 given, at most 64 allowed (one entry `ADDR/PREFIX:PORT` allows a whole network's addresses)"
        );
        assert!(check_len(Field::Allow, MAX_ALLOW_ENTRIES, true).is_ok());
    }

    #[test]
    fn networking_rules_and_their_fixes() {
        assert_eq!(check_net_with_tsi(true, false), Err(RuleError::NetWithTsi));
        assert_eq!(
            RuleError::NetWithTsi.fix(),
            Some(crate::Fix::DisableNetworking)
        );
        let e = check_allow_needs_net(false, Some("10.1.0.0/16:22")).unwrap_err();
        assert_eq!(
            e,
            RuleError::AllowNeedsNet {
                entry: "10.1.0.0/16:22".into()
            }
        );
        assert_eq!(e.fix(), Some(crate::Fix::EnableNet));
        assert_eq!(crate::Fix::EnableNet.to_string(), "set `net` to true");
        assert!(
            crate::Fix::EnableNetworking
                .to_string()
                .starts_with("set `net` to true")
        );
    }

    #[test]
    fn an_allow_entry_twice_is_the_same_rule_however_written() {
        use crate::egress::parse_egress_rule;
        let rules: Vec<EgressRule> = [
            "pypi.org:443",
            "10.1.0.0/16:22",
            "PyPI.org.:443",
            "pypi.org:80",
            "10.1.0.0/16:22",
        ]
        .iter()
        .map(|s| parse_egress_rule(s).unwrap())
        .collect();
        let indexed: Vec<(usize, &EgressRule)> =
            rules.iter().enumerate().map(|(i, r)| (i + 1, r)).collect();
        assert_eq!(
            check_allow(&indexed),
            [
                (
                    3,
                    RuleError::DuplicateAllow {
                        entry: "pypi.org:443".into(),
                        first_index: 1
                    }
                ),
                (
                    5,
                    RuleError::DuplicateAllow {
                        entry: "10.1.0.0/16:22".into(),
                        first_index: 2
                    }
                ),
            ]
        );
        assert_eq!(
            check_allow(&indexed)[0].1.to_string(),
            "allow-list entry pypi.org:443 is listed twice: each entry may be listed once"
        );
    }
}
