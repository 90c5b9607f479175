//! The shim's errors, and how they reach containerd (a TTRPC status whose
//! message is the whole chain of causes).

use std::path::PathBuf;

use containerd_shim::protos::ttrpc::{self, Code};

use crate::spec::SpecError;

/// Why a task request failed.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The bundle's spec asks for what a microVM cannot do.
    #[error("the bundle's OCI spec cannot run as a microVM")]
    Spec(#[source] SpecError),
    /// No task by that id in this shim.
    #[error("task {0} not found")]
    NotFound(String),
    /// The task's process id names no one process (0, or beyond `pid_t`),
    /// so nothing is signalled.
    #[error("task {0} has no process to signal")]
    NoProcess(String),
    /// The task has already finished.
    #[error("task {0}: the process has already finished")]
    Finished(String),
    /// A task by that id exists.
    #[error("task {0} already exists")]
    Exists(String),
    /// The request does not fit the task's state.
    #[error("task {id} is {state}: cannot {action}")]
    State {
        /// The task.
        id: String,
        /// Its state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// An exec process in a container with a VM of its own.
    #[error(
        "exec process {0}: exec is supported in a pod's containers only (a container with a microVM of its own runs one command)"
    )]
    Exec(String),
    /// An update of a task's resources.
    #[error(
        "task {0}: updating resources is not supported: a microVM's RAM and vCPUs are fixed when it boots"
    )]
    Update(String),
    /// A signal the VM cannot deliver.
    #[error(
        "signal {0} cannot be delivered to the guest command: only signals that end it (HUP, INT, QUIT, KILL, TERM) are supported, and they stop the whole microVM"
    )]
    Signal(u32),
    /// A terminal for the task.
    #[error("a terminal (TTY) is not supported: the guest console is a plain output stream")]
    Terminal,
    /// A checkpoint to restore from.
    #[error("restoring from a checkpoint ({0}) is not supported")]
    Checkpoint(String),
    /// A stdio URI scheme this shim does not write to.
    #[error("{what} `{uri}`: only FIFOs and file:// paths are supported")]
    StdioScheme {
        /// `stdout` or `stderr`.
        what: &'static str,
        /// The URI.
        uri: String,
    },
    /// A stdio target that could not be opened.
    #[error("cannot open {what} {path}")]
    Stdio {
        /// `stdout` or `stderr`.
        what: &'static str,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root file system could not be mounted.
    #[error("cannot mount the root file system ({kind} from {source_path}) at {}", target.display())]
    Mount {
        /// The mount type.
        kind: String,
        /// The mount source.
        source_path: String,
        /// The bundle's rootfs directory.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bundle's rootfs directory could not be made.
    #[error("cannot create the root file system's mount point {}", target.display())]
    RootDir {
        /// The bundle's rootfs directory.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root file system could not be unmounted.
    #[error("cannot unmount {}", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The container's runs directory could not be removed.
    #[error("cannot remove the VM's runs directory {}", dir.display())]
    RunsDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A step in a pod's share failed.
    #[error("the pod's share")]
    Share(#[source] crate::pod::share::ShareError),
    /// The CRI annotations do not say what the task is.
    #[error("the task's Kubernetes annotations")]
    Kind(#[source] crate::pod::kind::KindError),
    /// The pod's network namespace could not be opened.
    #[error("cannot open the pod's network namespace {}", path.display())]
    NetworkNamespace {
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pod container whose sandbox this shim does not run.
    #[error(
        "pod sandbox {0} is not running in this shim (one shim per pod: its containers are created after it)"
    )]
    NoPod(String),
    /// A pod container's process could not be started in the pod's VM.
    #[error("cannot start the process in the pod's microVM")]
    GuestStart(#[source] monocore::MonocoreError),
    /// A pod container could not be built in the pod's VM (its root or a
    /// bind could not be mounted there).
    #[error("cannot set the container up in the pod's microVM")]
    GuestPrepare(#[source] monocore::MonocoreError),
    /// A thread to watch a process could not be started.
    #[error("cannot start a thread to watch the process")]
    Thread(#[source] std::io::Error),
    /// The VM could not be started.
    #[error("cannot start the microVM")]
    Spawn(#[source] monocore::MonocoreError),
}

impl ShimError {
    /// The TTRPC status code containerd turns into its error kind.
    pub fn code(&self) -> Code {
        match self {
            Self::Spec(_)
            | Self::Kind(_)
            | Self::Terminal
            | Self::StdioScheme { .. }
            | Self::Signal(_) => Code::INVALID_ARGUMENT,
            Self::NotFound(_) | Self::Finished(_) | Self::NoPod(_) => Code::NOT_FOUND,
            Self::Exists(_) => Code::ALREADY_EXISTS,
            Self::State { .. } => Code::FAILED_PRECONDITION,
            Self::Exec(_) | Self::Update(_) | Self::Checkpoint(_) => Code::UNIMPLEMENTED,
            Self::Stdio { .. }
            | Self::RootDir { .. }
            | Self::Mount { .. }
            | Self::Unmount { .. }
            | Self::RunsDir { .. }
            | Self::Spawn(_)
            | Self::GuestStart(_)
            | Self::GuestPrepare(_)
            | Self::Thread(_)
            | Self::Share(_)
            | Self::NetworkNamespace { .. }
            | Self::NoProcess(_) => Code::INTERNAL,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(error: ShimError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(error.code(), chain(&error)))
    }
}

/// `error`'s message followed by each of its sources', `: `-separated:
/// containerd shows only the status message, so it carries every cause.
pub fn chain(error: &dyn std::error::Error) -> String {
    monocore::ErrorChain(error).to_string()
}
