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

use monocore::InvalidMicroVMConfigError as E;
use monocore::config::limits;
use monocore::vm::MicroVmConfig;

/// One value rule of the config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `num_vcpus` ≥ 1.
    Vcpus,
    /// `ram_mib` ≥ 1.
    Ram,
    /// A list is within its size limit.
    TooMany,
    /// `args` need an `exec_path`.
    ArgsNeedExec,
    /// `exec_path`, `args`, `workdir_path` and env entries are printable
    /// ASCII, at most `MAX_STRING_LEN` bytes.
    CommandLine,
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
    /// No two guest mount points overlap.
    Overlap,
    /// Ports are 1–65535.
    PortZero,
    /// Each host port is mapped once.
    DuplicatePort,
    /// An rlimit's soft limit ≤ its hard limit.
    SoftExceedsHard,
    /// Each rlimit resource is limited once.
    DuplicateRlimit,
}

/// The rule an error of `MicroVmConfig::validate_values` reports, or `None`
/// for an error that is not a value rule (a host check).
pub fn rule_of(error: &E) -> Option<Rule> {
    Some(match error {
        E::NumVCPUsIsZero => Rule::Vcpus,
        E::RamIsZero => Rule::Ram,
        E::TooMany { .. } => Rule::TooMany,
        E::ArgsWithoutExecPath(_) => Rule::ArgsNeedExec,
        E::InvalidCommandLineString(_) => Rule::CommandLine,
        E::InvalidGuestPath(_) => Rule::GuestPath,
        E::InvalidHostPath(_) => Rule::HostPath,
        E::InvalidMappedDir(_) => Rule::PairColon,
        E::InvalidEnvName(_) => Rule::EnvName,
        E::ConflictingGuestPaths(..) => Rule::Overlap,
        E::PortIsZero => Rule::PortZero,
        E::DuplicateHostPort(_) => Rule::DuplicatePort,
        E::RlimitSoftExceedsHard { .. } => Rule::SoftExceedsHard,
        E::DuplicateRlimit(_) => Rule::DuplicateRlimit,
        _ => return None,
    })
}

/// Printable ASCII (space to `~`), at most `MAX_STRING_LEN` bytes.
pub fn command_line_ok(s: &str) -> bool {
    s.len() <= limits::MAX_STRING_LEN && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Non-empty, no NUL, at most `MAX_PATH_LEN` bytes.
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
/// `validate_values` must accept it.
pub fn violations(config: &MicroVmConfig) -> Vec<Rule> {
    let mut out = Vec::new();
    let mut add = |rule: Rule, broken: bool| {
        if broken && !out.contains(&rule) {
            out.push(rule);
        }
    };
    add(Rule::Vcpus, config.num_vcpus == 0);
    add(Rule::Ram, config.ram_mib == 0);
    add(
        Rule::TooMany,
        config.mapped_dirs.len() > limits::MAX_MAPPED_DIRS
            || config.port_map.len() > limits::MAX_PORT_MAPPINGS
            || config.rlimits.len() > limits::MAX_RLIMITS
            || config.args.len() > limits::MAX_ARGS
            || config.env.len() > limits::MAX_ENV_VARS,
    );
    // The guest command's share of the kernel command line: exec path and
    // workdir as they are, each arg and `NAME=value` env entry with 3 bytes
    // of quoting.
    let command_bytes: usize = config
        .exec_path
        .iter()
        .map(|e| e.as_str().len())
        .sum::<usize>()
        + config
            .workdir_path
            .iter()
            .map(|w| w.as_str().len())
            .sum::<usize>()
        + config.args.iter().map(|a| a.len() + 3).sum::<usize>()
        + config
            .env
            .iter()
            .map(|v| v.get_name().len() + 1 + v.get_value().len() + 3)
            .sum::<usize>();
    add(
        Rule::TooMany,
        command_bytes > limits::MAX_COMMAND_LINE_TOTAL,
    );
    add(
        Rule::ArgsNeedExec,
        config.exec_path.is_none() && !config.args.is_empty(),
    );
    let exec_bad = config
        .exec_path
        .as_ref()
        .is_some_and(|e| !command_line_ok(e.as_str()));
    let args_bad = config.args.iter().any(|a| !command_line_ok(a));
    let workdir = config.workdir_path.as_ref().map(|w| w.as_str());
    let workdir_bad_chars = workdir.is_some_and(|w| !command_line_ok(w));
    let workdir_bad_path = workdir.is_some_and(|w| guest_components(w).is_none());
    let env_name_bad = config.env.iter().any(|v| {
        let name = v.get_name();
        name.is_empty() || name.contains('=') || name.contains('\0')
    });
    let env_bad_chars = config
        .env
        .iter()
        .any(|v| !command_line_ok(&format!("{}={}", v.get_name(), v.get_value())));
    add(
        Rule::CommandLine,
        exec_bad || args_bad || workdir_bad_chars || env_bad_chars,
    );
    add(Rule::GuestPath, workdir_bad_path);
    add(Rule::EnvName, env_name_bad);
    add(
        Rule::HostPath,
        config
            .console_output
            .as_ref()
            .is_some_and(|c| !host_path_ok(c.as_str())),
    );

    let mut mounts = Vec::new();
    for dir in &config.mapped_dirs {
        add(Rule::HostPath, !host_path_ok(dir.get_host().as_str()));
        add(
            Rule::PairColon,
            dir.get_host().as_str().contains(':') || dir.get_guest().as_str().contains(':'),
        );
        match guest_components(dir.get_guest().as_str()).filter(|c| !c.is_empty()) {
            Some(components) => mounts.push(components),
            None => add(Rule::GuestPath, true),
        }
    }
    // Overlap is judged only when every mount point is valid.
    add(
        Rule::Overlap,
        mounts.len() == config.mapped_dirs.len() && reference_overlap(&mounts).is_some(),
    );

    let mut hosts = std::collections::BTreeSet::new();
    for pair in &config.port_map {
        if pair.get_host() == 0 || pair.get_guest() == 0 {
            add(Rule::PortZero, true);
        } else if !hosts.insert(pair.get_host()) {
            add(Rule::DuplicatePort, true);
        }
    }

    let mut resources = std::collections::BTreeSet::new();
    for limit in &config.rlimits {
        add(Rule::SoftExceedsHard, limit.get_soft() > limit.get_hard());
        add(
            Rule::DuplicateRlimit,
            !resources.insert(*limit.get_resource()),
        );
    }
    out
}

/// Checks `validate_values` against [`violations`]: it accepts exactly the
/// configs that break no rule, and when it rejects one, the error it returns
/// names a rule the config does break. A `ConflictingGuestPaths` error names
/// two guest paths that really overlap.
pub fn check_against_oracle(config: &MicroVmConfig) -> Result<(), String> {
    let broken = violations(config);
    match config.validate_values() {
        Ok(()) if broken.is_empty() => Ok(()),
        Ok(()) => Err(format!("accepted, but it breaks {broken:?}: {config:?}")),
        Err(monocore::MonocoreError::InvalidMicroVMConfig(error)) => {
            let rule = rule_of(&error);
            if !rule.is_some_and(|r| broken.contains(&r)) {
                return Err(format!(
                    "rejected with {error:?} ({rule:?}), but the rules say {broken:?}: {config:?}"
                ));
            }
            if let E::ConflictingGuestPaths(a, b) = &error {
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
