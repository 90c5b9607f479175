//! Run-time validation of a [`MicroVmConfig`].
//!
//! Every value rule here is a call into `monocore_rules`, the crate that the
//! compile-time `vm!` macro also uses, so the two cannot drift apart, and
//! each error is the rule's own typed error ([`RuleError`]), never reworded.
//! Only the checks that need the host (does the root exist?) are unique to
//! run time. Every error carries where it is ([`ConfigPath`]).
//!
//! A config that passes [`MicroVmConfig::validate`] is one libkrun and the
//! guest agent accept: [`MicroVm::prepare`](super::MicroVm::prepare) makes
//! every `krun_*` call short of `krun_start_enter` without an error. What
//! only this host decides (its memory, its KVM, the kernel it boots) is
//! checked before the VMM starts by
//! [`MicroVm::check_support`](super::MicroVm::check_support).

use std::path::Path;

use monocore_rules::{
    ConfigPath, Field, HostPathError, RuleError, check_arg, check_args_have_exec,
    check_command_size, check_env, check_exec, check_host_path, check_ip, check_len,
    check_mapped_dirs, check_networking, check_num_vcpus, check_port_map, check_ram_mib,
    check_rlimits, command_field, normalize_guest_path, stack_soft_limit,
};

use super::MicroVmConfig;
use crate::{
    ConfigErrorKind as Kind, InvalidMicroVmConfigError as E, MonocoreError, MonocoreResult,
};

/// Collects located errors.
#[derive(Default)]
struct Errors(Vec<E>);

impl Errors {
    fn check(&mut self, at: ConfigPath, result: Result<(), impl Into<RuleError>>) {
        if let Err(error) = result {
            self.0.push(E::rule(at, error));
        }
    }

    fn list(&mut self, field: Field, errors: Vec<(usize, RuleError)>) {
        self.0
            .extend(errors.into_iter().map(|(i, e)| E::rule(field.at(i), e)));
    }

    /// Sorted by place (field order, then index), each place's errors in
    /// the order found.
    fn sorted(mut self) -> Vec<E> {
        self.0.sort_by_key(|e| e.at);
        self.0
    }
}

fn first(errors: Vec<E>) -> MonocoreResult<()> {
    match errors.into_iter().next() {
        Some(error) => Err(MonocoreError::InvalidMicroVmConfig(error)),
        None => Ok(()),
    }
}

impl MicroVmConfig {
    /// Checks the whole config: what only the host can tell (the root and
    /// every mapped host directory exist) and every value rule. Returns the
    /// first problem in field order.
    ///
    /// ```
    /// use monocore::{vm::MicroVmConfig, ConfigErrorKind, MonocoreError};
    /// let config = MicroVmConfig::new("/no/such/rootfs", 512);
    /// let Err(MonocoreError::InvalidMicroVmConfig(error)) = config.validate() else { panic!() };
    /// assert!(matches!(error.kind, ConfigErrorKind::RootPathDoesNotExist(_)));
    /// assert_eq!(error.at.to_string(), "root");
    /// ```
    pub fn validate(&self) -> MonocoreResult<()> {
        first(self.validation_errors())
    }

    /// Every problem with the config, host checks included, in field order
    /// (see [`ConfigPath`]). Empty means valid.
    pub fn validation_errors(&self) -> Vec<E> {
        let mut errors = Errors::default();
        self.check_values(&mut errors);
        self.check_host(&mut errors);
        errors.sorted()
    }

    /// Checks only the value rules, with no filesystem access: the rules that
    /// the `vm!` macro applies to literals at compile time.
    pub fn validate_values(&self) -> MonocoreResult<()> {
        first(self.value_errors())
    }

    /// Every value-rule problem, in field order: [`validate_values`]'s
    /// errors, all of them.
    ///
    /// [`validate_values`]: Self::validate_values
    pub fn value_errors(&self) -> Vec<E> {
        let mut errors = Errors::default();
        self.check_values(&mut errors);
        errors.sorted()
    }

    fn check_host(&self, errors: &mut Errors) {
        if let Err(kind) = check_root(&self.root_path) {
            errors.0.push(E {
                at: Field::Root.whole(),
                kind,
            });
        }
        // Bounded cost: an oversized list is reported by `check_values`
        // (`TooMany`), never walked here with one `stat` per entry.
        if check_len(Field::MappedDirs, self.mapped_dirs.len(), !self.local_only).is_err() {
            return;
        }
        for (index, dir) in self.mapped_dirs.iter().enumerate() {
            let host = dir.get_host().as_str();
            if check_host_path(host).is_err() {
                continue; // a value rule, reported by `check_values`
            }
            let kind = match std::fs::metadata(host) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => Kind::HostPathIsNotADirectory(host.to_owned()),
                Err(_) => Kind::HostPathDoesNotExist(host.to_owned()),
            };
            errors.0.push(E {
                at: Field::MappedDirs.at(index),
                kind,
            });
        }
    }

    fn check_values(&self, errors: &mut Errors) {
        errors.check(Field::Root.whole(), root_path_rule(&self.root_path));
        errors.check(
            Field::Ram.whole(),
            check_ram_mib(self.ram_mib.into()).map(drop),
        );
        errors.check(
            Field::Vcpus.whole(),
            check_num_vcpus(self.num_vcpus.into()).map(drop),
        );
        if let Some(exec) = &self.exec_path {
            errors.check(Field::Exec.whole(), check_exec(exec.as_str()));
        }
        errors.check(
            Field::Args.whole(),
            check_args_have_exec(self.exec_path.is_some(), self.args.len()),
        );
        if let Some(workdir) = &self.workdir_path {
            errors.check(
                Field::Workdir.whole(),
                normalize_guest_path(workdir.as_str()).map(drop),
            );
        }
        if let Some(console) = &self.console_output {
            errors.check(Field::Console.whole(), check_host_path(console.as_str()));
        }
        if let Some(ip) = self.assigned_ip {
            errors.check(Field::Ip.whole(), check_ip(ip));
        }

        // Bounded cost: a list beyond its limit is reported, not walked.
        let networking = !self.local_only;
        let mut within = |field: Field, len: usize| {
            let result = check_len(field, len, networking);
            let ok = result.is_ok();
            errors.check(field.whole(), result);
            ok
        };
        let args_ok = within(Field::Args, self.args.len());
        let env_ok = within(Field::Env, self.env.len());
        let dirs_ok = within(Field::MappedDirs, self.mapped_dirs.len());
        let ports_ok = within(Field::PortMap, self.port_map.len());
        let rlimits_ok = within(Field::Rlimits, self.rlimits.len());

        if args_ok {
            for (i, arg) in self.args.iter().enumerate() {
                errors.check(Field::Args.at(i), check_arg(arg));
            }
        }
        if env_ok {
            for (i, var) in self.env.iter().enumerate() {
                errors.check(Field::Env.at(i), check_env(var.get_name(), var.get_value()));
            }
        }
        if args_ok && env_ok && rlimits_ok {
            let arg_lens: Vec<usize> = self.args.iter().map(String::len).collect();
            let env_lens: Vec<usize> = self
                .env
                .iter()
                .map(|e| e.get_name().len() + 1 + e.get_value().len())
                .collect();
            let stack = stack_soft_limit(
                self.rlimits
                    .iter()
                    .map(|l| (l.get_resource().as_int(), *l.get_soft())),
            );
            errors.check(
                command_field(!self.args.is_empty(), !self.env.is_empty()).whole(),
                check_command_size(
                    self.exec_path.as_ref().map(|e| e.as_str().len()),
                    &arg_lens,
                    &env_lens,
                    stack,
                ),
            );
        }
        if dirs_ok {
            let dirs: Vec<(usize, &str, &str)> = self
                .mapped_dirs
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.get_host().as_str(), d.get_guest().as_str()))
                .collect();
            errors.list(Field::MappedDirs, check_mapped_dirs(&dirs));
        }
        if ports_ok {
            let ports: Vec<(usize, u16, u16)> = self
                .port_map
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.get_host(), p.get_guest()))
                .collect();
            errors.list(Field::PortMap, check_port_map(&ports));
            let first = self.port_map.first().map(ToString::to_string);
            errors.check(
                Field::PortMap.at(0),
                check_networking(self.local_only, first.as_deref()),
            );
        }
        if rlimits_ok {
            let limits: Vec<(usize, u32, u64, u64)> = self
                .rlimits
                .iter()
                .enumerate()
                .map(|(i, l)| (i, l.get_resource().as_int(), *l.get_soft(), *l.get_hard()))
                .collect();
            errors.list(Field::Rlimits, check_rlimits(&limits));
        }
    }
}

/// The value rule for the root path: a host path, in UTF-8 (libkrun takes
/// only UTF-8 paths).
fn root_path_rule(root: &Path) -> Result<(), HostPathError> {
    match root.to_str() {
        Some(text) => check_host_path(text),
        None => Err(HostPathError::NotUtf8(root.to_string_lossy().into_owned())),
    }
}

fn check_root(root: &Path) -> Result<(), Kind> {
    if root_path_rule(root).is_err() {
        return Ok(()); // a value rule, reported by `check_values`
    }
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Kind::RootPathIsNotADirectory(root.to_path_buf())),
        Err(_) => Err(Kind::RootPathDoesNotExist(root.to_path_buf())),
    }
}

#[cfg(test)]
mod tests;
