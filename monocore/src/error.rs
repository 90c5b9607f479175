//! Error types.

use std::path::PathBuf;

use monocore_rules::{
    ConfigPath, EnvPairError, Fix, PathPairError, PortPairError, RlimitError, RuleError,
};

/// The result type of every fallible monocore operation.
pub type MonocoreResult<T> = Result<T, MonocoreError>;

/// Every error monocore returns.
///
/// Each cause is told once: either in the message (`Display`), or as
/// [`source()`](std::error::Error::source) (e.g. [`RunDir`](Self::RunDir),
/// [`SelfHelper`](Self::SelfHelper)), never both; so printing the message
/// and then each source gives the whole story without repeats.
///
/// Parse errors (a string that is not a valid pair, limit or level) are kept
/// apart from validation errors ([`InvalidMicroVmConfigError`]: a config whose
/// values parse but do not make a valid microVM).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonocoreError {
    /// An I/O operation failed.
    #[error("io error: {0}")]
    Io(std::io::Error),

    /// A string is not a valid `host:guest` path pair.
    #[error(transparent)]
    InvalidPathPair(#[from] PathPairError),

    /// A string is not a valid `host:guest` port pair.
    #[error(transparent)]
    InvalidPortPair(#[from] PortPairError),

    /// A string is not a valid `NAME=value` environment entry.
    #[error(transparent)]
    InvalidEnvPair(#[from] EnvPairError),

    /// A string is not a valid resource limit (`RESOURCE=soft:hard`): its
    /// [`kind`](RlimitError::kind) says whether the form, the resource or a
    /// value is wrong.
    #[error(transparent)]
    InvalidRlimit(#[from] RlimitError),

    /// A string is not a log level.
    #[error(
        "invalid log level {0:?}: expected off, error, warn, info, debug, trace, or a number from 0 to 5"
    )]
    InvalidLogLevel(String),

    /// An OCI image could not be pulled, unpacked or used.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),

    /// A default (busybox) root filesystem could not be prepared.
    #[error(transparent)]
    RootfsPrepare(#[from] crate::rootfs::RootfsError),

    /// A config file has problems (each with its line and column).
    #[error(transparent)]
    ConfigFile(crate::config::file::ConfigFileErrors),

    /// The values parse, but do not make a valid microVM.
    #[error("invalid microVM configuration: {0}")]
    InvalidMicroVmConfig(InvalidMicroVmConfigError),

    /// The config is valid, but this host cannot run it (more memory or
    /// vCPUs than it has, networking with a kernel that has none). Checked
    /// before the VMM starts.
    #[error("this host cannot run this microVM: {0}")]
    HostCannotRun(InvalidMicroVmConfigError),

    /// This host cannot boot any microVM (`/dev/kvm` is missing or cannot
    /// be opened). Checked before the VMM starts; `monocore doctor` says
    /// more.
    #[error("this host cannot boot microVMs: {problem}; fix: {}", .problem.fix())]
    HostCannotBoot {
        /// What is wrong.
        problem: crate::host::HostProblem,
    },

    /// A libkrun call returned a negative status.
    #[error("libkrun call {call} failed with errno {errno} ({description})", description = errno_description(*.errno))]
    Krun {
        /// The `krun_*` function that failed.
        call: &'static str,
        /// The errno it returned (positive).
        errno: i32,
    },

    /// A string holds a NUL byte, so it cannot be passed to libkrun.
    #[error("{field} {value:?} holds a NUL byte, which cannot be passed to libkrun")]
    NulInString {
        /// The config field.
        field: &'static str,
        /// The offending value.
        value: String,
    },

    /// A host path is not valid UTF-8; libkrun only accepts UTF-8 paths.
    #[error("host path {} is not valid UTF-8, which libkrun requires", .0.display())]
    NonUtf8Path(PathBuf),

    /// This program cannot run as its own VM helper (see
    /// [`MicroVm::spawn`](crate::vm::MicroVm::spawn)); nothing was started.
    #[error(
        "this program cannot run as its own VM helper; give SpawnOptions::helper_path a helper \
         binary whose main calls monocore::vm::helper_main"
    )]
    SelfHelper(#[source] crate::vm::SelfHelperError),

    /// The VM helper failed before the VM was entered (bad config, a libkrun
    /// call failed, or it could not start).
    #[error("the VM helper failed before entering the VM: {message}")]
    HelperFailed {
        /// The helper's report, or its exit status and last output line.
        message: String,
    },

    /// No guest kernel can be used: a `kvm_pvm` host without the compat
    /// kernel, or a kernel path that is not a file (see [`crate::kernel`]).
    #[error("no usable guest kernel: {reason}")]
    Kernel {
        /// What is missing, and how to get it.
        reason: String,
    },

    /// The VM's private run directory (the guest agent, its spec and report)
    /// could not be created.
    #[error("cannot create the VM's run directory in {}: {source}", .dir.display())]
    RunDir {
        /// The parent directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The VM booted, but the guest agent could not set it up (mount a
    /// mapped directory, set a limit, enter the working directory) or could
    /// not execute the command. Never a guest exit code.
    #[error("{}", describe_guest_setup(*.step, *.errno, .detail))]
    GuestSetup {
        /// The step that failed.
        step: crate::vm::GuestStep,
        /// Its errno.
        errno: i32,
        /// What it was working on (a guest path, escaped to printable
        /// ASCII; it comes from the guest).
        detail: String,
    },

    /// The VM booted, but the guest agent ended without saying whether it
    /// ran the command (it was killed, or its report is missing or garbled).
    #[error("the guest agent ended (VM exit code {exit_code}) before it ran the command: {reason}")]
    GuestAgentSilent {
        /// The VM's exit code.
        exit_code: i32,
        /// What was found instead of a report.
        reason: String,
    },

    /// No running VM has this ID (see `RunningVm::find`).
    #[error("no VM {id:?}: {reason}")]
    NoSuchVm {
        /// The ID given.
        id: String,
        /// Why none was found.
        reason: String,
    },

    /// The control channel to the guest agent of a running VM failed (the
    /// VM ended, the agent never answered, or it broke the protocol).
    #[error("the guest agent's control channel failed: {message}")]
    Control {
        /// What went wrong.
        message: String,
    },

    /// The VMM stopped without the guest reporting an exit code: the guest
    /// failed to boot or crashed (e.g. `KVM_EXIT_INTERNAL_ERROR`, a kernel
    /// panic). Never a guest exit code.
    #[error(
        "the microVM failed to boot or crashed (VMM exit status {vmm_exit_code}): {last_error_line}"
    )]
    BootFailed {
        /// The VMM's last error line.
        last_error_line: String,
        /// The VMM process's own exit code (not a guest exit code).
        vmm_exit_code: i32,
    },
}

// By hand, not `#[from]`: the message holds the inner error, so it is not
// also a `source()`.
impl From<std::io::Error> for MonocoreError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<InvalidMicroVmConfigError> for MonocoreError {
    fn from(error: InvalidMicroVmConfigError) -> Self {
        Self::InvalidMicroVmConfig(error)
    }
}

impl From<rustix::io::Errno> for MonocoreError {
    fn from(errno: rustix::io::Errno) -> Self {
        Self::Io(errno.into())
    }
}

fn describe_guest_setup(step: crate::vm::GuestStep, errno: i32, detail: &str) -> String {
    use crate::vm::GuestStep;
    let errno = errno_description(errno);
    match step {
        GuestStep::Exec => format!("the guest cannot execute {detail}: {errno}"),
        GuestStep::Spec => format!("the guest agent cannot read its run spec: {detail}: {errno}"),
        GuestStep::Root => {
            format!("the guest cannot mount its root filesystem ({detail}): {errno}")
        }
        GuestStep::Pivot => format!("the guest cannot switch into its root filesystem: {errno}"),
        GuestStep::System => format!("the guest cannot mount {detail}: {errno}"),
        GuestStep::Mount { index } => {
            format!("the guest cannot mount mapped_dirs[{index}] at {detail}: {errno}")
        }
        GuestStep::Rlimit { resource } => {
            format!("the guest cannot set resource limit {resource}: {errno}")
        }
        GuestStep::Workdir => format!("the guest cannot enter the workdir {detail}: {errno}"),
    }
}

/// `strerror`-like text for an errno.
pub(crate) fn errno_description(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep only the description.
    match text.rfind(" (os error") {
        Some(end) => text.get(..end).unwrap_or(&text).to_owned(),
        None => text,
    }
}

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
