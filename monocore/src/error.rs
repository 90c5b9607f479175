//! Error types.

use std::path::PathBuf;

use monocore_rules::{
    CommandLineError, EnvPairError, GuestPathError, PathPairError, PortPairError, RlimitError,
    RlimitErrorKind,
};

use crate::vm::LinuxRLimitResource;

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
/// apart from validation errors ([`InvalidMicroVMConfigError`]: a config whose
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

    /// A resource limit is not of the form `RESOURCE=soft:hard`.
    #[error(transparent)]
    InvalidRLimitFormat(RlimitError),

    /// A resource limit names an unknown resource.
    #[error(transparent)]
    InvalidRLimitResource(RlimitError),

    /// A resource limit's value is not a number, or soft exceeds hard.
    #[error(transparent)]
    InvalidRLimitValue(RlimitError),

    /// A string is not a log level.
    #[error(
        "invalid log level {0:?}: expected off, error, warn, info, debug, trace, or a number from 0 to 5"
    )]
    InvalidLogLevel(String),

    /// A default (busybox) root filesystem could not be prepared.
    #[error(transparent)]
    RootfsPrepare(#[from] crate::rootfs::RootfsError),

    /// A config file has problems (each with its line and column).
    #[error(transparent)]
    ConfigFile(crate::config::file::ConfigFileErrors),

    /// The values parse, but do not make a valid microVM.
    #[error("invalid microVM configuration: {0}")]
    InvalidMicroVMConfig(InvalidMicroVMConfigError),

    /// A libkrun call returned a negative status.
    #[error("libkrun call {call} failed with errno {errno} ({description})", description = errno_description(*.errno))]
    Krun {
        /// The `krun_*` function that failed.
        call: &'static str,
        /// The errno it returned (positive).
        errno: i32,
    },

    /// A config value that libkrun 1.19.7 cannot honour. monocore refuses it
    /// rather than ignore it.
    #[error("unsupported setting {setting} = {value}: {reason}")]
    Unsupported {
        /// The config field.
        setting: &'static str,
        /// Its value.
        value: String,
        /// Why libkrun cannot honour it, and what to do instead.
        reason: &'static str,
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

impl From<InvalidMicroVMConfigError> for MonocoreError {
    fn from(error: InvalidMicroVMConfigError) -> Self {
        Self::InvalidMicroVMConfig(error)
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

impl From<RlimitError> for MonocoreError {
    fn from(error: RlimitError) -> Self {
        match error.kind {
            RlimitErrorKind::Format => Self::InvalidRLimitFormat(error),
            RlimitErrorKind::UnknownResource(_) => Self::InvalidRLimitResource(error),
            RlimitErrorKind::InvalidValue(_) | RlimitErrorKind::SoftExceedsHard { .. } => {
                Self::InvalidRLimitValue(error)
            }
        }
    }
}

/// Why a [`MicroVmConfig`](crate::vm::MicroVmConfig) is not valid. Each
/// variant carries the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMicroVMConfigError {
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

    /// A host path (mapped directory or console file) is empty, too long, or
    /// holds a NUL byte.
    #[error("invalid host path {}: it must be non-empty, without NUL, and at most 4096 bytes", preview(.0))]
    InvalidHostPath(String),

    /// A mapped directory whose host or guest path holds a `:`, which the
    /// `host:guest` string form (and so the VM helper's config channel)
    /// cannot carry. Holds the pair as `host:guest`.
    #[error(
        "invalid mapped directory {0:?}: a host or guest path holds `:`, which the `host:guest` form cannot carry"
    )]
    InvalidMappedDir(String),

    /// `num_vcpus` is 0.
    #[error("number of vCPUs is zero: at least 1 is required")]
    NumVCPUsIsZero,

    /// `ram_mib` is 0.
    #[error("amount of RAM is zero: at least 1 MiB is required")]
    RamIsZero,

    /// An exec path, argument, workdir or environment entry is not printable
    /// ASCII (space to `~`), holds a NUL, or is too long.
    #[error("invalid command-line string {}: {reason}", preview(.0), reason = command_line_reason(.0))]
    InvalidCommandLineString(String),

    /// A guest path (mount point or workdir) is relative, climbs above `/`
    /// with `..`, or is otherwise unusable.
    #[error(transparent)]
    InvalidGuestPath(#[from] GuestPathError),

    /// Two mapped directories' guest paths are equal, or one lies inside the
    /// other (after normalization).
    #[error("conflicting guest paths: '{0}' and '{1}' overlap")]
    ConflictingGuestPaths(String, String),

    /// Two port mappings use the same host port.
    #[error("host port {0} is mapped twice")]
    DuplicateHostPort(u16),

    /// A port mapping uses port 0.
    #[error("port 0 cannot be mapped: ports are 1 to 65535")]
    PortIsZero,

    /// A resource limit's soft value exceeds its hard value.
    #[error("resource limit {resource}: soft limit {soft} exceeds hard limit {hard}")]
    RlimitSoftExceedsHard {
        /// The resource.
        resource: LinuxRLimitResource,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },

    /// The same resource is limited twice.
    #[error("resource limit {0} is set twice")]
    DuplicateRlimit(LinuxRLimitResource),

    /// An environment variable name is empty or holds `=` or NUL.
    #[error("invalid environment variable name {0:?}: it must be non-empty, without `=` or NUL")]
    InvalidEnvName(String),

    /// Arguments were given but no exec path to pass them to.
    #[error("arguments {0:?} were given without an exec path to run them")]
    ArgsWithoutExecPath(Vec<String>),

    /// A list is longer than its documented limit (see `monocore_rules::limits`).
    #[error("too many {what}: {count} given, at most {max} allowed")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Longer values are shown cut short in messages (the variant keeps them
/// whole): a 10 MB argument must not make a 10 MB error line.
const PREVIEW_LEN: usize = 256;

/// `s` quoted as `{:?}` would, cut after [`PREVIEW_LEN`] characters with
/// its length in bytes when longer.
fn preview(s: &str) -> String {
    match s.char_indices().nth(PREVIEW_LEN) {
        Some((cut, _)) => format!(
            "{:?}… ({} bytes)",
            s.get(..cut).unwrap_or_default(),
            s.len()
        ),
        None => format!("{s:?}"),
    }
}

fn command_line_reason(s: &str) -> String {
    match monocore_rules::validate_command_line(s) {
        Err(CommandLineError::InvalidChar { found, index }) => {
            format!("{found:?} at byte {index} is not printable ASCII (space to `~`)")
        }
        Err(e @ CommandLineError::TooLong { .. }) => e.to_string(),
        Ok(()) => "not allowed here".to_owned(),
    }
}
