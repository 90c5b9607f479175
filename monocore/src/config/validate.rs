//! Run-time validation of a [`MicroVmConfig`].
//!
//! The value rules are one call, `monocore_rules::check_config`, on a view
//! of the config with every value known: the compile-time `vm!` macro makes
//! the same call on its literals, so which rule runs on what cannot drift
//! apart, and each error is the rule's own typed error
//! ([`RuleError`](monocore_rules::RuleError)), never reworded. Only the
//! checks that need the host (does the root exist?) are unique to run time.
//! Every error carries where it is ([`ConfigPath`](monocore_rules::ConfigPath)).
//!
//! A config that passes [`MicroVmConfig::validate`] is one libkrun and the
//! guest agent accept: [`MicroVm::prepare`](super::MicroVm::prepare) makes
//! every `krun_*` call short of `krun_start_enter` without an error. What
//! only this host decides (its memory, its KVM, the kernel it boots) is
//! checked before the VMM starts by
//! [`MicroVm::check_support`](super::MicroVm::check_support).

use std::path::Path;

use monocore_rules::config::{EnvVar, MappedDir, PortMapping, Rlimit};
use monocore_rules::{
    ConfigView, Field, Known, check_config, check_host_path, check_len, check_root_path, known_list,
};

use super::{AllowEntry, MicroVmConfig};
use crate::{
    ConfigErrorKind as Kind, InvalidMicroVmConfigError as E, MonocoreError, MonocoreResult,
};

/// Collects located errors.
#[derive(Default)]
struct Errors(Vec<E>);

impl Errors {
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
    /// (see [`ConfigPath`](monocore_rules::ConfigPath)). Empty means valid.
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
        if check_len(Field::MappedDirs, self.mapped_dirs.len(), self.net).is_err() {
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
        errors.0.extend(
            check_config(&self.view())
                .into_iter()
                .map(|(at, error)| E::rule(at, error)),
        );
    }

    /// This config as the rules see it: every value known.
    fn view(&self) -> ConfigView<'_> {
        ConfigView {
            root: Known::Now(self.root_path.as_path()),
            ram: Known::Now(self.ram_mib.into()),
            vcpus: Some(Known::Now(self.num_vcpus.into())),
            exec: self.exec_path.as_ref().map(|e| Known::Now(e.as_str())),
            args: known_list(self.args.iter().map(String::as_str)),
            env: known_list(self.env.iter().map(|e| EnvVar {
                name: e.get_name(),
                value: e.get_value(),
            })),
            workdir: self.workdir_path.as_ref().map(|w| Known::Now(w.as_str())),
            mapped_dirs: known_list(self.mapped_dirs.iter().map(|d| MappedDir {
                host: d.get_host().as_str(),
                guest: d.get_guest().as_str(),
            })),
            port_map: known_list(self.port_map.iter().map(|p| PortMapping {
                host: p.get_host(),
                guest: p.get_guest(),
            })),
            net: Known::Now(self.net),
            allow: known_list(self.allow.iter().map(AllowEntry::rule)),
            rlimits: known_list(self.rlimits.iter().map(|l| Rlimit {
                resource: l.get_resource().as_int(),
                soft: *l.get_soft(),
                hard: *l.get_hard(),
            })),
            console: self.console_output.as_ref().map(|c| Known::Now(c.as_str())),
            ip: self.assigned_ip.map(Known::Now),
            local_only: Known::Now(self.local_only),
        }
    }
}

fn check_root(root: &Path) -> Result<(), Kind> {
    if check_root_path(root).is_err() {
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
