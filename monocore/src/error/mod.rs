//! Every error type of the crate, in one place below every other module:
//! this module uses nothing of the crate but [`crate::util`], so any module
//! can return any of these without an import cycle.
//!
//! - [`MonocoreError`] (this file): what every fallible operation returns;
//! - [`config`]: [`InvalidMicroVmConfigError`], a config that is not valid
//!   or does not fit this host, located by its [`ConfigPath`](monocore_rules::ConfigPath);
//! - [`config_file`]: [`ConfigFileErrors`], a TOML file's problems by line
//!   and column;
//! - [`host`]: [`HostProblem`], [`CompatKernelError`], [`KernelError`];
//! - [`state`]: [`StateError`], the cache and run directories;
//! - [`net`]: [`NetError`], the guest's network (passt, the allow-list's
//!   names, published ports);
//! - [`pool`]: [`PoolError`], a warm pool of VMs;
//! - [`rootfs`]: [`RootfsError`]; [`image`]: [`ImageError`];
//! - [`runtime`]: [`HelperError`], [`ControlError`], [`ReportError`],
//!   [`SelfHelperError`], [`NoSuchVmReason`], [`GuestCommandError`];
//! - [`files`]: [`GuestFileError`], files in and out of a running VM;
//! - [`chain`]: [`ErrorChain`], an error with its causes, for people.
//!
//! The policy: each variant carries the offending value; a cause is told
//! once, as [`source()`](std::error::Error::source) (`#[source]`), never
//! repeated in the message; parse errors are kept apart from validation
//! errors.

mod chain;
mod config;
mod config_file;
mod files;
mod host;
pub(crate) mod image;
mod net;
mod pool;
pub(crate) mod rootfs;
mod runtime;
mod state;

use std::{path::PathBuf, time::Duration};

use monocore_rules::{EnvPairError, PathPairError, PortPairError, RlimitError};

pub use chain::ErrorChain;
pub use config::{ConfigErrorKind, InvalidMicroVmConfigError, LogLevelError};
pub use config_file::{ConfigFileError, ConfigFileErrors};
pub use files::{GuestFileError, GuestFileField};
pub use host::{CompatKernelError, HostProblem, KernelError};
pub use image::ImageError;
pub use net::NetError;
pub use pool::PoolError;

pub use rootfs::RootfsError;
pub use runtime::{
    ControlError, GuestCommandError, GuestCommandField, GuestCommandProblem, HelperError,
    NoSuchVmReason, ReportError, SelfHelperError,
};
pub use state::{StateError, UnsafeDirReason};

use crate::util::errno_description;

/// The guest agent's set-up steps, as named by [`MonocoreError::GuestSetup`].
pub use monocore_agent::report::Step as GuestStep;

/// The result type of every fallible monocore operation.
pub type MonocoreResult<T> = Result<T, MonocoreError>;

/// Every error monocore returns.
///
/// Each cause is told once: either in the message (`Display`), or as
/// [`source()`](std::error::Error::source) (e.g. [`Helper`](Self::Helper),
/// [`Control`](Self::Control), [`SelfHelper`](Self::SelfHelper)), never
/// both; so printing the message and then each source
/// ([`ErrorChain`]) gives the whole story without repeats.
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

    /// A string is not a valid egress allow-list entry (`HOST:PORT`).
    #[error(transparent)]
    InvalidAllowEntry(#[from] monocore_rules::egress::EgressRuleError),

    /// The guest's network (`net`) could not be set up.
    #[error("the guest's network")]
    Network(#[from] NetError),

    /// A warm pool could not be made, or gave no sandbox.
    #[error("warm pool")]
    Pool(#[from] PoolError),

    /// A string is not a valid `NAME=value` environment entry.
    #[error(transparent)]
    InvalidEnvPair(#[from] EnvPairError),

    /// A string is not a valid resource limit (`RESOURCE=soft:hard`): its
    /// [`kind`](RlimitError::kind) says whether the form, the resource or a
    /// value is wrong.
    #[error(transparent)]
    InvalidRlimit(#[from] RlimitError),

    /// A string is not a log level.
    #[error(transparent)]
    InvalidLogLevel(#[from] LogLevelError),

    /// An OCI image could not be pulled, unpacked or used.
    #[error(transparent)]
    Image(#[from] ImageError),

    /// A default (busybox) root filesystem could not be prepared.
    #[error(transparent)]
    RootfsPrepare(#[from] RootfsError),

    /// monocore's cache or a VM's run directory could not be used.
    #[error(transparent)]
    State(#[from] StateError),

    /// A config file has problems (each with its line and column).
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileErrors),

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
        problem: HostProblem,
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
    SelfHelper(#[from] SelfHelperError),

    /// The VM helper failed before the VM was entered (it could not start,
    /// its request could not be sent or read, a libkrun call failed in it,
    /// …); the source says what.
    #[error("the VM helper failed before entering the VM")]
    Helper(#[from] HelperError),

    /// No guest kernel can be used: a `kvm_pvm` host without the compat
    /// kernel, or a kernel path that is not a file (see
    /// [`crate::kernel`]); the source says which.
    #[error("no usable guest kernel")]
    Kernel(#[from] KernelError),

    /// The VM booted, but the guest agent could not set it up (mount a
    /// mapped directory, set a limit, enter the working directory) or could
    /// not execute the command. Never a guest exit code.
    #[error("{}", describe_guest_setup(*.step, *.errno, .detail))]
    GuestSetup {
        /// The step that failed.
        step: GuestStep,
        /// Its errno.
        errno: i32,
        /// What it was working on (a guest path, escaped to printable
        /// ASCII; it comes from the guest).
        detail: String,
    },

    /// The VM booted, but the guest agent ended without saying whether it
    /// ran the command (it was killed, or its report is missing or
    /// garbled); the source says what was found instead of a report.
    #[error("the guest agent ended (VM exit code {exit_code}) before it ran the command")]
    GuestAgentSilent {
        /// The VM's exit code.
        exit_code: i32,
        /// What was found instead of a report.
        #[source]
        reason: ReportError,
    },

    /// No running VM has this ID (see `RunningVm::find`).
    #[error("no VM {id:?}: {reason}")]
    NoSuchVm {
        /// The ID given.
        id: String,
        /// Why none was found.
        reason: NoSuchVmReason,
    },

    /// A command for a running VM has a value the guest agent would refuse
    /// (a container name, a path, too many binds); nothing was sent.
    #[error(transparent)]
    GuestCommand(#[from] GuestCommandError),

    /// Files could not be moved in or out of a running VM: a request the
    /// agent would refuse (nothing was sent), a limit the guest went past,
    /// a deadline, the agent's failure, or the host side of a copy.
    #[error(transparent)]
    GuestFile(#[from] GuestFileError),

    /// The control channel to the guest agent of a running VM failed (the
    /// VM ended, the agent never answered, or it broke the protocol); the
    /// source says how.
    #[error("the guest agent's control channel failed")]
    Control(#[from] ControlError),

    /// A command run in a VM was still running when its
    /// [`timeout`](crate::vm::GuestCommand::timeout) passed: it was killed
    /// with everything it started. `wait`, `wait_timeout` and `try_wait`
    /// return this (with no output), and `wait_with_output` too, with the
    /// output piped until then.
    #[error(
        "the guest command was still running after its timeout of {timeout:?}, and was killed{}",
        if *.confirmed { "" } else { " (the guest agent did not confirm it)" }
    )]
    CommandTimedOut {
        /// The command's timeout.
        timeout: Duration,
        /// Whether the guest agent reported the command's end after the
        /// kill; `false` when it did not within a short grace (the VM is
        /// frozen or overloaded): the handle gave up on it.
        confirmed: bool,
        /// What it wrote to stdout until then (piped, `wait_with_output`).
        stdout: Vec<u8>,
        /// What it wrote to stderr until then (piped, `wait_with_output`).
        stderr: Vec<u8>,
    },

    /// The VM reached its
    /// [`time_to_live`](crate::vm::SpawnOptions::time_to_live): its helper
    /// ended it (whatever ran in it was killed).
    #[error("the VM reached its time to live of {time_to_live:?} and was ended")]
    VmExpired {
        /// Its time to live.
        time_to_live: Duration,
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

fn describe_guest_setup(step: GuestStep, errno: i32, detail: &str) -> String {
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
        GuestStep::Container => {
            format!("the guest cannot set up the container ({detail}): {errno}")
        }
        GuestStep::Bind { index } => {
            format!("the guest cannot mount container.binds[{index}] at {detail}: {errno}")
        }
        GuestStep::Resolve
        | GuestStep::Write
        | GuestStep::Read
        | GuestStep::Make
        | GuestStep::Stat => format!("the guest cannot {step} {detail}: {errno}"),
    }
}
