//! Errors of running a VM: the helper process, the guest agent's control
//! channel and report, and finding a running VM.

use std::{io, path::PathBuf, sync::Arc, time::Duration};

/// Why this program cannot be its own VM helper; see `MicroVm::spawn`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelfHelperError {
    /// monocore is linked into a shared library, so re-executing the
    /// program would start a program that does not contain it.
    #[error(
        "monocore is linked into the shared library {}, not into the program's executable, \
         so the executable cannot act as the VM helper",
        object.display()
    )]
    SharedLibrary {
        /// The shared object that holds monocore's code.
        object: PathBuf,
    },
    /// This platform's C library does not pass the arguments to
    /// constructors.
    #[error(
        "running the program as its own VM helper needs Linux with glibc; this build targets \
         {os} with another C library"
    )]
    Unsupported {
        /// The target operating system.
        os: &'static str,
    },
    /// monocore's constructor did not run when the program started, so it
    /// would not recognise the helper's marker in the child either.
    #[error("monocore's start-up constructor did not run in this process")]
    NotStarted,
    /// The program's executable cannot be opened.
    #[error("cannot open this program's executable (/proc/self/exe)")]
    Executable {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Why the VM helper (the child process the VM runs in) failed before it
/// entered the VM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HelperError {
    /// The request cannot be serialized.
    #[error("the config cannot be serialized for the helper")]
    Serialize(#[source] serde_json::Error),
    /// The request is larger than the helper reads.
    #[error("the config is {len} bytes of JSON: at most {max} bytes can be sent to the helper")]
    RequestTooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The run spec for the guest agent cannot be encoded.
    #[error("the run spec cannot be encoded")]
    Spec(#[source] monocore_agent::spec::SpecError),
    /// The console file cannot be passed on.
    #[error("the console file cannot be passed to the helper")]
    ConsoleFile(#[source] io::Error),
    /// The helper process cannot be started.
    #[error("{program} cannot be started")]
    Start {
        /// What was to be started.
        program: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The request cannot be read.
    #[error("the request cannot be read")]
    Read(#[source] io::Error),
    /// The request's header is not a byte length and a newline.
    #[error("bad request header {header:?}: expected a byte length and a newline")]
    BadHeader {
        /// The header as read (lossily decoded).
        header: String,
    },
    /// The request's stream ended early.
    #[error("the request ended after {read} of {len} bytes")]
    Truncated {
        /// The bytes that arrived.
        read: usize,
        /// The length the header announced.
        len: usize,
    },
    /// The request is not the JSON of a request.
    #[error("the request is not valid")]
    BadRequest(#[source] serde_json::Error),
    /// A `log` logger was set in the helper process before monocore's.
    #[error(
        "a `log` logger was already set in the helper process (by a constructor that runs before \
         monocore's), so the VMM's log cannot reach the parent"
    )]
    LoggerAlreadySet,
    /// The helper exited before it said it was entering the VM.
    #[error("the helper exited with code {code} before entering the VM; last line: {last_line}")]
    Exited {
        /// Its exit code.
        code: i32,
        /// The last line of its log.
        last_line: String,
    },
    /// The error the helper process reported on its status channel (an
    /// error crosses the process boundary as its text, with every cause).
    #[error("{0}")]
    Reported(String),
}

/// How the control channel to a VM's guest agent failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The VM has ended: there is no agent to talk to.
    #[error("the VM has ended")]
    VmEnded,
    /// The VM ended while this waited for its agent.
    #[error("the VM ended before its agent answered")]
    EndedBeforeAnswer,
    /// The agent did not answer before the deadline.
    #[error("the guest agent did not answer on {} in time", socket.display())]
    NoAnswer {
        /// The control socket.
        socket: PathBuf,
    },
    /// The agent speaks another version of the protocol.
    #[error("the guest agent speaks control protocol version {agent}, not {host}")]
    Version {
        /// The agent's version.
        agent: u32,
        /// This library's.
        host: u32,
    },
    /// The agent answered with a message that does not belong there.
    #[error("the guest agent answered {got} to {request}")]
    Unexpected {
        /// What was asked.
        request: &'static str,
        /// The kind of message that came instead.
        got: &'static str,
    },
    /// The connection ended before the command's exit.
    #[error("the connection to the guest agent ended before the command's exit status")]
    Ended,
    /// Reading or writing the connection failed.
    #[error("the connection to the guest agent failed")]
    Io(#[source] Arc<io::Error>),
    /// The agent broke the protocol (a frame that does not decode).
    #[error("the guest agent broke the control protocol")]
    Protocol(#[source] Arc<monocore_agent::control::ControlError>),
    /// The guest agent did not answer `request` in time: the VM is frozen
    /// or stopped (its VMM process too), or its agent no longer serves the
    /// control channel. A command's streams end, and its handle returns
    /// this instead of blocking.
    #[error("the guest agent did not answer {request} within {waited:?}")]
    Unresponsive {
        /// What it did not answer: `Hello`, `Exec`, `Prepare`, `Discard`,
        /// `Ping` (a running command's check) or `Kill`.
        request: &'static str,
        /// How long it was given.
        waited: Duration,
    },
    /// The VM did not end in time after being asked to.
    #[error("VM {id} did not end within {timeout:?}")]
    ShutdownTimeout {
        /// The VM's ID.
        id: String,
        /// How long it was given.
        timeout: Duration,
    },
}

impl From<io::Error> for ControlError {
    fn from(error: io::Error) -> Self {
        Self::Io(Arc::new(error))
    }
}

impl From<monocore_agent::control::ControlError> for ControlError {
    fn from(error: monocore_agent::control::ControlError) -> Self {
        match error {
            monocore_agent::control::ControlError::Io(e) => Self::from(e),
            other => Self::Protocol(Arc::new(other)),
        }
    }
}

/// A value of a [`GuestCommand`](crate::vm::GuestCommand) that the guest
/// agent would refuse, found before anything is sent. Each names its
/// field as the builder does, with its index in a list
/// (`container.binds[2].target`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestCommandError {
    /// A name or path breaks a rule (`problem`).
    #[error("guest command: {field} {value:?} {problem}")]
    Invalid {
        /// Where it is.
        field: GuestCommandField,
        /// The value, escaped to printable ASCII and cut to at most 64
        /// characters.
        value: String,
        /// What is wrong.
        problem: GuestCommandProblem,
    },
    /// A list has more entries than the agent takes.
    #[error("guest command: {field} has {count} entries, at most {max} are allowed")]
    TooMany {
        /// The list.
        field: GuestCommandField,
        /// How many it has.
        count: usize,
        /// The most allowed.
        max: usize,
    },
    /// A resource limit's soft limit is above its hard limit.
    #[error(
        "guest command: rlimits[{index}] ({name}): the soft limit {soft} exceeds the hard limit {hard}",
        name = monocore_rules::rlimit_name(*.resource).unwrap_or("RLIMIT_UNKNOWN")
    )]
    SoftExceedsHard {
        /// Its index in the command's limits.
        index: usize,
        /// The resource number.
        resource: u32,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

/// Where in a guest command a value is (with its index in a list), as
/// named by [`GuestCommandError`].
pub use monocore_agent::control::ExecField as GuestCommandField;
/// What is wrong with a guest command's value, as named by
/// [`GuestCommandError::Invalid`].
pub use monocore_agent::control::ExecProblem as GuestCommandProblem;

/// What was found instead of the guest agent's report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The VM's private root cannot be opened.
    #[error("the VM's private root cannot be opened")]
    Root(#[source] io::Error),
    /// There is no report.
    #[error("it wrote no report")]
    Missing,
    /// The report cannot be opened (it is a symlink, or under one).
    #[error("its report cannot be opened")]
    Open(#[source] io::Error),
    /// The report is not a regular file.
    #[error("its report is not a regular file")]
    NotAFile,
    /// The report cannot be read.
    #[error("its report cannot be read")]
    Read(#[source] io::Error),
    /// The report does not parse.
    #[error("its report is invalid")]
    Invalid(#[source] monocore_agent::report::ReportError),
}

/// Why no running VM was found for an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoSuchVmReason {
    /// The ID is shorter than 4 characters.
    TooShort,
    /// No running VM's ID starts with it.
    NotRunning,
    /// More than one running VM's ID starts with it.
    Ambiguous,
}

impl std::fmt::Display for NoSuchVmReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TooShort => "give at least 4 characters of the ID",
            Self::NotRunning => "no running VM has that ID (see `monocore ps`)",
            Self::Ambiguous => "more than one running VM has an ID starting so; give more of it",
        })
    }
}
