//! An independent re-statement of the `MicroVmConfig` value rules (the
//! README's config table), for the property tests (`tests/properties.rs`)
//! and the `validate` fuzz target (`fuzz/`, which includes this file with
//! `#[path]`).
//!
//! It deliberately calls nothing from `monocore_rules`: paths are normalized
//! and compared component by component here, and the overlap check is the
//! plain O(n²) pairwise one, so a bug in the shared rules (or in the
//! O(n log n) overlap search) shows up as a disagreement. Only the size
//! limits (data, not rules) come from `monocore::config::limits`.

use monocore::config::limits;
use monocore::vm::MicroVmConfig;
use monocore::{ConfigErrorKind, Field, InvalidMicroVmConfigError as E, RuleError};

/// One value rule of the config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `num_vcpus` 1 to `MAX_VCPUS`.
    Vcpus,
    /// `ram_mib` ≥ 1.
    Ram,
    /// `root_path` is a usable host path (non-empty, UTF-8, no NUL, at most
    /// `MAX_PATH_LEN` bytes).
    RootPath,
    /// A list is within its size limit (mapped dirs: libkrun's interrupt
    /// lines, one fewer with `net`'s network device).
    TooMany,
    /// `args` need an `exec_path`.
    ArgsNeedExec,
    /// The exec path (non-empty, no NUL, at most `MAX_PATH_LEN` bytes),
    /// arguments and env entries (no NUL, at most `MAX_STRING_LEN` bytes).
    GuestString,
    /// The whole command fits `execve` (see [`command_bytes`]).
    CommandSize,
    /// `workdir_path` and guest mount points are absolute, without `..`
    /// above `/`, without NUL, at most `MAX_PATH_LEN` bytes; a mount point
    /// is not `/`.
    GuestPath,
    /// Host paths (mapped dirs, console) are non-empty, without NUL, at most
    /// `MAX_PATH_LEN` bytes.
    HostPath,
    /// A mapped directory's host and guest paths hold no `:` (the
    /// `host:guest` form cannot carry it).
    PairColon,
    /// An env name is non-empty, without `=` or NUL.
    EnvName,
    /// No two valid guest mount points overlap.
    Overlap,
    /// Ports are 1–65535.
    PortZero,
    /// Each host port is mapped once.
    DuplicateHostPort,
    /// Each guest port is mapped once.
    DuplicateGuestPort,
    /// A port map needs networking: `net`, or TSI (`local_only = false`).
    NeedsNetworking,
    /// An allow-list needs `net`.
    AllowNeedsNet,
    /// `net` and TSI (`local_only = false`) are not both on.
    NetWithTsi,
    /// Each allow-list entry is listed once (entries compared by their
    /// parsed, canonical string form).
    DuplicateAllow,
    /// `assigned_ip` cannot be set.
    Ip,
    /// An rlimit's soft limit ≤ its hard limit.
    SoftExceedsHard,
    /// Each rlimit resource is limited once.
    DuplicateRlimit,
}

/// The rule an error of `MicroVmConfig::validate_values` reports, or `None`
/// for an error that is not a value rule (a host check).
pub fn rule_of(error: &E) -> Option<Rule> {
    let ConfigErrorKind::Rule(rule) = &error.kind else {
        return None;
    };
    Some(match (rule, error.at.field) {
        (RuleError::Range(_), Field::Vcpus) => Rule::Vcpus,
        (RuleError::Range(_), _) => Rule::Ram,
        (RuleError::HostPath(_), Field::Root) => Rule::RootPath,
        (RuleError::HostPath(_), _) => Rule::HostPath,
        (RuleError::TooMany { .. }, _) => Rule::TooMany,
        (RuleError::ArgsWithoutExec { .. }, _) => Rule::ArgsNeedExec,
        (RuleError::GuestString(_), _) => Rule::GuestString,
        (RuleError::CommandTooLarge { .. }, _) => Rule::CommandSize,
        (RuleError::GuestPath(_), _) => Rule::GuestPath,
        (RuleError::MappedDirColon { .. }, _) => Rule::PairColon,
        (RuleError::EnvName { .. }, _) => Rule::EnvName,
        (RuleError::GuestPathsOverlap { .. }, _) => Rule::Overlap,
        (RuleError::PortZero { .. }, _) => Rule::PortZero,
        (RuleError::DuplicateHostPort { .. }, _) => Rule::DuplicateHostPort,
        (RuleError::DuplicateGuestPort { .. }, _) => Rule::DuplicateGuestPort,
        (RuleError::PortMapNeedsNetworking { .. }, _) => Rule::NeedsNetworking,
        (RuleError::AllowNeedsNet { .. }, _) => Rule::AllowNeedsNet,
        (RuleError::NetWithTsi, _) => Rule::NetWithTsi,
        (RuleError::DuplicateAllow { .. }, _) => Rule::DuplicateAllow,
        (RuleError::IpUnsupported { .. }, _) => Rule::Ip,
        (RuleError::SoftExceedsHard { .. }, _) => Rule::SoftExceedsHard,
        (RuleError::DuplicateRlimit { .. }, _) => Rule::DuplicateRlimit,
        _ => return None,
    })
}

/// No NUL, at most `max` bytes.
pub fn guest_string_ok(s: &str, max: usize) -> bool {
    s.len() <= max && !s.contains('\0')
}

/// The bytes `execve` counts for the command: each of argv (exec, or
/// `/bin/sh`, then the args) and envp with its NUL and an 8-byte pointer.
pub fn command_bytes(config: &MicroVmConfig) -> usize {
    let exec = config.exec_path.as_ref().map_or(7, |e| e.as_str().len());
    let strings = std::iter::once(exec)
        .chain(config.args.iter().map(String::len))
        .chain(
            config
                .env
                .iter()
                .map(|v| v.get_name().len() + 1 + v.get_value().len()),
        );
    strings.map(|len| len + 9).sum()
}

/// What `execve` allows with the config's `RLIMIT_STACK` (resource 3) soft
/// limit: a quarter of it within 128 KiB and 6 MiB; 2 MiB without one.
pub fn command_room(config: &MicroVmConfig) -> usize {
    let stack = config
        .rlimits
        .iter()
        .find(|l| l.get_resource().as_int() == 3)
        .map(|l| *l.get_soft());
    match stack {
        None => 2 << 20,
        Some(soft) => (soft / 4).clamp(128 << 10, 6 << 20) as usize,
    }
}

/// Non-empty, no NUL, at most `MAX_PATH_LEN` bytes (`PATH_MAX` less its
/// NUL).
pub fn host_path_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains('\0') && s.len() <= limits::MAX_PATH_LEN
}

/// The components of an absolute guest path after resolving `.`, `..` and
/// repeated `/`; `None` if the path is not a valid guest path.
pub fn guest_components(path: &str) -> Option<Vec<&str>> {
    if !path.starts_with('/') || path.contains('\0') || path.len() > limits::MAX_PATH_LEN {
        return None;
    }
    let mut stack: Vec<&str> = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            stack.pop()?;
        } else {
            stack.push(part);
        }
    }
    Some(stack)
}

/// Whether one component list equals or lies below the other.
pub fn components_overlap(a: &[&str], b: &[&str]) -> bool {
    let n = a.len().min(b.len());
    a.iter().take(n).eq(b.iter().take(n))
}

/// The first pair `(i, j)`, `i < j`, of overlapping component lists, found by
/// comparing every pair: the O(n²) reference for the overlap check.
pub fn reference_overlap(paths: &[Vec<&str>]) -> Option<(usize, usize)> {
    paths.iter().enumerate().find_map(|(i, a)| {
        paths
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, b)| components_overlap(a, b))
            .map(|(j, _)| (i, j))
    })
}

/// Every value rule `config` breaks (each at most once). Empty means
/// `validate_values` must accept it. A list over its limit is not looked
/// into.
pub fn violations(config: &MicroVmConfig) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut add = |rule: Rule, broken: bool| {
        if broken && !out.contains(&rule) {
            out.push(rule);
        }
    };
    add(
        Rule::Vcpus,
        config.num_vcpus == 0 || config.num_vcpus > limits::MAX_VCPUS,
    );
    add(Rule::Ram, config.ram_mib == 0);
    add(
        Rule::RootPath,
        !config.root_path.to_str().is_some_and(host_path_ok),
    );
    let (args_over, env_over, dirs_over, ports_over, rlimits_over) = (
        config.args.len() > limits::MAX_ARGS,
        config.env.len() > limits::MAX_ENV_VARS,
        config.mapped_dirs.len() > limits::max_mapped_dirs(config.net),
        config.port_map.len() > limits::MAX_PORT_MAPPINGS,
        config.rlimits.len() > limits::MAX_RLIMITS,
    );
    let allow_over = config.allow.len() > limits::MAX_ALLOW_ENTRIES;
    add(
        Rule::TooMany,
        args_over || env_over || dirs_over || ports_over || rlimits_over || allow_over,
    );
    add(Rule::NetWithTsi, config.net && !config.local_only);
    add(
        Rule::ArgsNeedExec,
        config.exec_path.is_none() && !config.args.is_empty(),
    );
    add(
        Rule::GuestString,
        config.exec_path.as_ref().is_some_and(|e| {
            e.as_str().is_empty() || !guest_string_ok(e.as_str(), limits::MAX_PATH_LEN)
        }),
    );
    if !args_over {
        add(
            Rule::GuestString,
            config
                .args
                .iter()
                .any(|a| !guest_string_ok(a, limits::MAX_STRING_LEN)),
        );
    }
    if !env_over {
        let name_bad = |name: &str| name.is_empty() || name.contains('=') || name.contains('\0');
        add(
            Rule::EnvName,
            config.env.iter().any(|v| name_bad(v.get_name())),
        );
        add(
            Rule::GuestString,
            config.env.iter().any(|v| {
                !name_bad(v.get_name())
                    && !guest_string_ok(
                        &format!("{}={}", v.get_name(), v.get_value()),
                        limits::MAX_STRING_LEN,
                    )
            }),
        );
    }
    if !(args_over || env_over || rlimits_over) {
        add(
            Rule::CommandSize,
            command_bytes(config) > command_room(config),
        );
    }
    add(
        Rule::GuestPath,
        config
            .workdir_path
            .as_ref()
            .is_some_and(|w| guest_components(w.as_str()).is_none()),
    );
    add(
        Rule::HostPath,
        config
            .console_output
            .as_ref()
            .is_some_and(|c| !host_path_ok(c.as_str())),
    );
    add(Rule::Ip, config.assigned_ip.is_some());

    if !dirs_over {
        let mut mounts = Vec::new();
        for dir in &config.mapped_dirs {
            let (host, guest) = (dir.get_host().as_str(), dir.get_guest().as_str());
            if !host_path_ok(host) {
                add(Rule::HostPath, true);
            } else if host.contains(':') || guest.contains(':') {
                add(Rule::PairColon, true);
            } else {
                match guest_components(guest).filter(|c| !c.is_empty()) {
                    Some(components) => mounts.push(components),
                    None => add(Rule::GuestPath, true),
                }
            }
        }
        // Overlap is judged among the mount points that are valid.
        add(Rule::Overlap, reference_overlap(&mounts).is_some());
    }

    if !ports_over {
        let mut hosts = std::collections::BTreeSet::new();
        let mut guests = std::collections::BTreeSet::new();
        for pair in &config.port_map {
            if pair.get_host() == 0 || pair.get_guest() == 0 {
                add(Rule::PortZero, true);
                continue;
            }
            add(Rule::DuplicateHostPort, !hosts.insert(pair.get_host()));
            add(Rule::DuplicateGuestPort, !guests.insert(pair.get_guest()));
        }
        add(
            Rule::NeedsNetworking,
            !config.net && config.local_only && !config.port_map.is_empty(),
        );
    }

    if !allow_over {
        let mut entries = std::collections::BTreeSet::new();
        for entry in &config.allow {
            add(Rule::DuplicateAllow, !entries.insert(entry.to_string()));
        }
        add(Rule::AllowNeedsNet, !config.net && !config.allow.is_empty());
    }

    if !rlimits_over {
        let mut resources = std::collections::BTreeSet::new();
        for limit in &config.rlimits {
            add(Rule::SoftExceedsHard, limit.get_soft() > limit.get_hard());
            add(
                Rule::DuplicateRlimit,
                !resources.insert(*limit.get_resource()),
            );
        }
    }
    out
}

/// Checks `validate_values` against [`violations`]: it accepts exactly the
/// configs that break no rule, and when it rejects one, the error it returns
/// names a rule the config does break. A `GuestPathsOverlap` error names
/// two guest paths that really overlap.
pub fn check_against_oracle(config: &MicroVmConfig) -> Result<(), String> {
    let broken = violations(config);
    match config.validate_values() {
        Ok(()) if broken.is_empty() => Ok(()),
        Ok(()) => Err(format!("accepted, but it breaks {broken:?}: {config:?}")),
        Err(monocore::MonocoreError::InvalidMicroVmConfig(error)) => {
            let rule = rule_of(&error);
            if !rule.is_some_and(|r| broken.contains(&r)) {
                return Err(format!(
                    "rejected with {error:?} ({rule:?}), but the rules say {broken:?}: {config:?}"
                ));
            }
            if let ConfigErrorKind::Rule(RuleError::GuestPathsOverlap {
                guest: a, first: b, ..
            }) = &error.kind
            {
                let real = guest_components(a)
                    .zip(guest_components(b))
                    .is_some_and(|(a, b)| components_overlap(&a, &b));
                if !real {
                    return Err(format!("{a:?} and {b:?} were reported to overlap"));
                }
            }
            Ok(())
        }
        Err(other) => Err(format!(
            "validate_values returned a non-config error {other:?}"
        )),
    }
}
