//! Why a config is not valid, or cannot run on this host: the error every
//! front end (run time, TOML, command line) locates by its [`ConfigPath`].

use std::path::PathBuf;

use monocore_rules::{ConfigPath, Fix, RuleError};

/// Why a [`MicroVmConfig`](crate::vm::MicroVmConfig) is not valid (or, as
/// [`MonocoreError::HostCannotRun`], cannot run on this host), and where.
///
/// `at` is a structured place in the config: the field and, for a list, the
/// index of the entry at fault. Front ends map it to their own place (a
/// TOML line and column, a command-line flag); rewording a message never
/// moves it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {kind}{}", FixSuffix(kind.fix()))]
pub struct InvalidMicroVmConfigError {
    /// Where the problem is.
    pub at: ConfigPath,
    /// What it is.
    pub kind: ConfigErrorKind,
}

struct FixSuffix(Option<Fix>);

impl std::fmt::Display for FixSuffix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(fix) => write!(f, "; {fix}"),
            None => Ok(()),
        }
    }
}

impl InvalidMicroVmConfigError {
    /// A rule error at `at`.
    pub fn rule(at: ConfigPath, error: impl Into<RuleError>) -> Self {
        Self {
            at,
            kind: ConfigErrorKind::Rule(error.into()),
        }
    }

    /// What is wrong and its fix, without the place (for a front end that
    /// shows the place its own way).
    pub fn message(&self) -> String {
        format!("{}{}", self.kind, FixSuffix(self.kind.fix()))
    }

    /// The rule error, if this is one (not a host fact).
    pub fn rule_error(&self) -> Option<&RuleError> {
        match &self.kind {
            ConfigErrorKind::Rule(rule) => Some(rule),
            _ => None,
        }
    }
}

/// What is wrong with a config: a rule it breaks (the same typed error,
/// with the same wording, that `vm!` reports at compile time), or a fact
/// of this host it does not fit. Each variant carries the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A rule of `monocore_rules`.
    #[error(transparent)]
    Rule(#[from] RuleError),

    /// The root filesystem directory does not exist.
    #[error("root path does not exist: {}", .0.display())]
    RootPathDoesNotExist(PathBuf),

    /// The root path exists but is not a directory.
    #[error("root path is not a directory: {}", .0.display())]
    RootPathIsNotADirectory(PathBuf),

    /// A mapped directory's host side does not exist.
    #[error("host path does not exist: {0}")]
    HostPathDoesNotExist(String),

    /// A mapped directory's host side exists but is not a directory.
    #[error("host path is not a directory: {0}")]
    HostPathIsNotADirectory(String),

    /// More guest memory than this host has.
    #[error("ram of {ram_mib} MiB is more than this host has: {host_mib} MiB of memory in total")]
    RamExceedsHost {
        /// The config's RAM in MiB.
        ram_mib: u32,
        /// The host's memory in MiB.
        host_mib: u64,
    },

    /// More vCPUs than this host's KVM can run in one VM.
    #[error("{vcpus} vCPUs are more than this host's KVM runs in one VM: at most {max}")]
    VcpusExceedKvm {
        /// The config's vCPU count.
        vcpus: u8,
        /// KVM's limit (`KVM_CAP_MAX_VCPUS`).
        max: u32,
    },

    /// Networking with a kernel that has no TSI.
    #[error(
        "networking (local_only = false) needs libkrunfw's kernel, whose patches add TSI, and this VM boots {kernel}, which has no TSI"
    )]
    NetworkingNeedsTsi {
        /// The kernel the VM boots.
        kernel: String,
    },
}

impl ConfigErrorKind {
    /// How to resolve this with another setting, if that is the fix.
    pub fn fix(&self) -> Option<Fix> {
        match self {
            Self::Rule(rule) => rule.fix(),
            Self::NetworkingNeedsTsi { .. } => Some(Fix::DisableNetworking),
            _ => None,
        }
    }
}

/// A string that is not a log level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid log level {0:?}: expected off, error, warn, info, debug, trace, or a number from 0 to 5"
)]
pub struct LogLevelError(pub String);
