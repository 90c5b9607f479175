//! Run-time validation of a [`MicroVmConfig`].
//!
//! Every rule here is a function of `monocore_rules`, the crate that the
//! compile-time `vm!` macro also uses, so the two cannot drift apart. Only the
//! checks that need the host (does the root exist?) are unique to run time.

use std::{ops::ControlFlow, path::Path};

use monocore_rules::{
    check_host_path, check_num_vcpus, check_path_pair_parts, check_ram_mib, find_duplicates,
    find_overlap, limits, normalize_guest_path, normalize_mount_point,
};

use super::MicroVmConfig;
use crate::{InvalidMicroVMConfigError as E, MonocoreError, MonocoreResult};

/// Where validation errors go: either stop at the first, or collect all.
struct Sink {
    all: bool,
    errors: Vec<E>,
}

impl Sink {
    fn push(&mut self, error: E) -> ControlFlow<()> {
        self.errors.push(error);
        if self.all {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }

    fn check(&mut self, result: Result<(), E>) -> ControlFlow<()> {
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.push(e),
        }
    }
}

/// The `what` of the `TooMany` error for an oversized guest command.
pub(crate) const COMMAND_BYTES: &str = "bytes of guest command (exec path, arguments, environment, workdir) on the kernel command line";

fn command_line(s: &str) -> Result<(), E> {
    monocore_rules::validate_command_line(s).map_err(|_| E::InvalidCommandLineString(s.to_owned()))
}

fn count(what: &'static str, count: usize, max: usize) -> Result<(), E> {
    if count > max {
        return Err(E::TooMany { what, count, max });
    }
    Ok(())
}

fn host_path(path: &str) -> Result<(), E> {
    check_host_path(path).map_err(|_| E::InvalidHostPath(path.to_owned()))
}

impl MicroVmConfig {
    /// Checks the whole config: first what only the host can tell (the root
    /// and every mapped host directory exist), then every value rule.
    /// Returns the first problem found.
    ///
    /// ```
    /// use monocore::{vm::MicroVmConfig, InvalidMicroVMConfigError, MonocoreError};
    /// let config = MicroVmConfig::new("/no/such/rootfs", 512);
    /// assert!(matches!(
    ///     config.validate(),
    ///     Err(MonocoreError::InvalidMicroVMConfig(InvalidMicroVMConfigError::RootPathDoesNotExist(_)))
    /// ));
    /// ```
    pub fn validate(&self) -> MonocoreResult<()> {
        let mut sink = Sink {
            all: false,
            errors: Vec::new(),
        };
        if self.check_host(&mut sink).is_continue() {
            let _ = self.check_values(&mut sink);
        }
        match sink.errors.into_iter().next() {
            Some(error) => Err(MonocoreError::InvalidMicroVMConfig(error)),
            None => Ok(()),
        }
    }

    /// Every problem with the config, host checks included, in field order.
    /// Empty means valid.
    pub fn validation_errors(&self) -> Vec<E> {
        let mut sink = Sink {
            all: true,
            errors: Vec::new(),
        };
        let _ = self.check_host(&mut sink);
        let _ = self.check_values(&mut sink);
        sink.errors
    }

    /// Checks only the value rules, with no filesystem access: the rules that
    /// the `vm!` macro applies to literals at compile time.
    pub fn validate_values(&self) -> MonocoreResult<()> {
        let mut sink = Sink {
            all: false,
            errors: Vec::new(),
        };
        let _ = self.check_values(&mut sink);
        match sink.errors.into_iter().next() {
            Some(error) => Err(MonocoreError::InvalidMicroVMConfig(error)),
            None => Ok(()),
        }
    }

    /// Checks that `s` may appear on the guest command line: printable ASCII
    /// (space to `~`), no NUL, at most `limits::MAX_STRING_LEN` bytes.
    ///
    /// ```
    /// use monocore::vm::MicroVmConfig;
    /// assert!(MicroVmConfig::validate_command_line("Hello, World!").is_ok());
    /// assert!(MicroVmConfig::validate_command_line("new\nline").is_err());
    /// ```
    pub fn validate_command_line(s: &str) -> MonocoreResult<()> {
        command_line(s).map_err(MonocoreError::from)
    }

    fn check_host(&self, sink: &mut Sink) -> ControlFlow<()> {
        sink.check(check_root(&self.root_path))?;
        // Bounded cost: an oversized list is reported by `check_values`
        // (`TooMany`), never walked here with one `stat` per entry.
        if self.mapped_dirs.len() > limits::MAX_MAPPED_DIRS {
            return ControlFlow::Continue(());
        }
        for dir in &self.mapped_dirs {
            let host = dir.get_host().as_str();
            let result = host_path(host).and_then(|()| match std::fs::metadata(host) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(E::HostPathIsNotADirectory(host.to_owned())),
                Err(_) => Err(E::HostPathDoesNotExist(host.to_owned())),
            });
            sink.check(result)?;
        }
        ControlFlow::Continue(())
    }

    fn check_values(&self, sink: &mut Sink) -> ControlFlow<()> {
        // The field types bound the maximum; the shared rules reject zero.
        if check_num_vcpus(u128::from(self.num_vcpus)).is_err() {
            sink.push(E::NumVCPUsIsZero)?;
        }
        if check_ram_mib(u128::from(self.ram_mib)).is_err() {
            sink.push(E::RamIsZero)?;
        }

        // Bounded cost: a list beyond its limit is reported, not walked.
        let counts = [
            count(
                "mapped directories",
                self.mapped_dirs.len(),
                limits::MAX_MAPPED_DIRS,
            ),
            count(
                "port mappings",
                self.port_map.len(),
                limits::MAX_PORT_MAPPINGS,
            ),
            count("resource limits", self.rlimits.len(), limits::MAX_RLIMITS),
            count("arguments", self.args.len(), limits::MAX_ARGS),
            count(
                "environment variables",
                self.env.len(),
                limits::MAX_ENV_VARS,
            ),
        ];
        let mut too_many = false;
        for result in counts {
            too_many |= result.is_err();
            sink.check(result)?;
        }
        if too_many {
            return ControlFlow::Continue(());
        }

        sink.check(count(
            COMMAND_BYTES,
            self.command_line_total(),
            limits::MAX_COMMAND_LINE_TOTAL,
        ))?;
        if let Some(exec) = &self.exec_path {
            sink.check(command_line(exec.as_str()))?;
        } else if monocore_rules::cmdline::args_without_exec(false, self.args.len()) {
            sink.push(E::ArgsWithoutExecPath(self.args.clone()))?;
        }
        for arg in &self.args {
            sink.check(command_line(arg))?;
        }
        if let Some(workdir) = &self.workdir_path {
            sink.check(command_line(workdir.as_str()).and_then(|()| {
                normalize_guest_path(workdir.as_str())
                    .map(drop)
                    .map_err(E::from)
            }))?;
        }
        for var in &self.env {
            let name_ok = monocore_rules::check_env_name(var.get_name())
                .map_err(|_| E::InvalidEnvName(var.get_name().clone()));
            sink.check(name_ok.and_then(|()| command_line(&var.to_string())))?;
        }
        if let Some(console) = &self.console_output {
            sink.check(host_path(console.as_str()))?;
        }

        self.check_mapped_dirs(sink)?;
        self.check_ports(sink)?;
        self.check_rlimits(sink)
    }

    /// The bytes the guest command takes: exec path, args, `NAME=value`
    /// env entries and workdir (see `limits::MAX_COMMAND_LINE_TOTAL`).
    fn command_line_total(&self) -> usize {
        let strings = self
            .exec_path
            .iter()
            .chain(&self.workdir_path)
            .map(|p| p.as_str().len())
            .chain(self.args.iter().map(|a| limits::quoted_len(a.len())))
            .chain(self.env.iter().map(|e| {
                limits::quoted_len(
                    e.get_name()
                        .len()
                        .saturating_add(1)
                        .saturating_add(e.get_value().len()),
                )
            }));
        strings.fold(0, usize::saturating_add)
    }

    fn check_mapped_dirs(&self, sink: &mut Sink) -> ControlFlow<()> {
        let mut normalized = Vec::with_capacity(self.mapped_dirs.len());
        let mut all_normalized = true;
        for dir in &self.mapped_dirs {
            sink.check(host_path(dir.get_host().as_str()))?;
            sink.check(
                check_path_pair_parts(dir.get_host().as_str(), dir.get_guest().as_str())
                    .map_err(|_| E::InvalidMappedDir(dir.to_string())),
            )?;
            match normalize_mount_point(dir.get_guest().as_str()) {
                Ok(path) => normalized.push(path),
                Err(e) => {
                    all_normalized = false;
                    sink.push(e.into())?;
                }
            }
        }
        if let Some((i, j)) = find_overlap(&normalized).filter(|_| all_normalized) {
            let guest = |k: usize| {
                self.mapped_dirs
                    .get(k)
                    .map(|d| d.get_guest().to_string())
                    .unwrap_or_default()
            };
            sink.push(E::ConflictingGuestPaths(guest(i), guest(j)))?;
        }
        ControlFlow::Continue(())
    }

    fn check_ports(&self, sink: &mut Sink) -> ControlFlow<()> {
        // Zero ports are reported on their own and take no part in the
        // duplicate check.
        let host_ports: Vec<(u16, usize)> = self
            .port_map
            .iter()
            .enumerate()
            .filter(|(_, pair)| pair.get_host() != 0 && pair.get_guest() != 0)
            .map(|(i, pair)| (pair.get_host(), i))
            .collect();
        let keys: Vec<u16> = host_ports.iter().map(|&(port, _)| port).collect();
        let mut repeats = find_duplicates(&keys)
            .into_iter()
            .filter_map(|(_, repeat)| host_ports.get(repeat).map(|&(_, i)| i))
            .peekable();
        for (i, pair) in self.port_map.iter().enumerate() {
            if pair.get_host() == 0 || pair.get_guest() == 0 {
                sink.push(E::PortIsZero)?;
            } else if repeats.next_if_eq(&i).is_some() {
                sink.push(E::DuplicateHostPort(pair.get_host()))?;
            }
        }
        ControlFlow::Continue(())
    }

    fn check_rlimits(&self, sink: &mut Sink) -> ControlFlow<()> {
        let resources: Vec<_> = self.rlimits.iter().map(|l| *l.get_resource()).collect();
        let mut repeats = find_duplicates(&resources)
            .into_iter()
            .map(|(_, repeat)| repeat)
            .peekable();
        for (i, limit) in self.rlimits.iter().enumerate() {
            let (resource, soft, hard) =
                (*limit.get_resource(), *limit.get_soft(), *limit.get_hard());
            if monocore_rules::check_soft_hard(soft, hard).is_err() {
                sink.push(E::RlimitSoftExceedsHard {
                    resource,
                    soft,
                    hard,
                })?;
            }
            if repeats.next_if_eq(&i).is_some() {
                sink.push(E::DuplicateRlimit(resource))?;
            }
        }
        ControlFlow::Continue(())
    }
}

fn check_root(root: &Path) -> Result<(), E> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(E::RootPathIsNotADirectory(root.to_path_buf())),
        Err(_) => Err(E::RootPathDoesNotExist(root.to_path_buf())),
    }
}

#[cfg(test)]
mod tests;
