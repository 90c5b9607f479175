//! The control channel between the host and the agent of a running VM.
//!
//! # Transport
//!
//! The agent listens on vsock port [`CONTROL_PORT`]. libkrun maps that port
//! to a Unix socket that the VMM listens on in the VM's run directory on the
//! host (never in the guest's share); every connection to it becomes a new
//! vsock connection to the agent. One connection carries one *session*: one
//! command executed in the running VM, one container prepared or discarded,
//! a run of file requests, or one shutdown request.
//!
//! # Framing (version 2, kinds added since)
//!
//! Every message is a frame: a `u32` little-endian length `n`, then `n`
//! bytes: a kind byte and the body. A reader refuses a length above
//! [`MAX_FRAME_LEN`] (or [`MAX_DATA_FRAME_LEN`] for every kind but `Exec`)
//! before reading the body, and the body is read in pieces as it arrives,
//! so a peer that lies about a length costs no more than one piece. Strings and lists use the
//! encoding of [`crate::wire`].
//!
//! ```text
//! host → agent                              agent → host
//! 0x01 Hello     version: u32               0x81 Hello    version: u32
//! 0x02 Exec      ExecRequest (see below)    0x82 Started  pid: u32
//! 0x03 Stdin     bytes (empty: EOF)         0x83 Stdout   bytes
//! 0x04 Signal    signal: i32                0x84 Stderr   bytes
//! 0x05 Resize    rows: u16, cols: u16       0x85 Exited   code: u8 kind (0 exit, 1 signal), i32
//! 0x06 Shutdown                             0x86 Failed   report line (crate::report)
//! 0x07 Prepare   ContainerSetup             0x87 Done
//! 0x08 Discard   name: string               0x88 Data     bytes (of a file read)
//! 0x09 WriteFile FileTarget, mode: u32      0x89 Entries  ≤ MAX_ENTRIES × Entry
//! 0x0A Data      bytes (empty: end of file)
//! 0x0B ReadFile  FileTarget, max: u64
//! 0x0C Make      FileTarget, Dir mode | Symlink target
//! 0x0D Stat      FileTarget, list: flag
//! 0x0E Ping      nonce: u32                 0x8E Pong     nonce: u32
//! 0x0F Kill      pid: u32
//! ```
//!
//! A session starts with both `Hello`s, then the host sends `Exec` (answered
//! by `Started` or `Failed`, then output and one `Exited`), `Prepare` or
//! `Discard` (answered by `Done` or `Failed`), file requests (below), or
//! `Shutdown` (the VM ends). The agent is the one that can be hostile to
//! the host, so the host's decoder is the one that matters most; both are
//! bounded and fuzzed.
//!
//! # Files (version 4)
//!
//! A file session carries any number of file requests, one after another,
//! each answered before the next is sent; all of them name the same place
//! (a session thread that joined a container stays in it: a request for
//! another place is `Failed`). Each request names a [`FileTarget`]: a
//! container (entered as `Place::Join` enters it) or the VM, and an
//! absolute path. Every path is resolved inside the place's root
//! (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` from its `/`),
//! so a symlink or a `..` on the way leads no higher than that root.
//! Their encoding is in `control/files.rs`.
//!
//! - `WriteFile` is followed by the file's bytes in `Data` frames (at most
//!   [`MAX_DATA`] each) and an empty `Data`; then the agent answers `Done`
//!   or `Failed`. The bytes go to a new file beside the path (created with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW` and exactly the mode: no umask), which
//!   is then renamed over the path: the write is atomic, and a file or
//!   symlink already at the path is *replaced*, never followed nor written
//!   through (a directory there is `EISDIR`). The parent must exist.
//! - `ReadFile` is answered by the file's bytes in `Data` frames, then
//!   `Done`; symlinks are followed, inside the root. The open does not
//!   wait for a FIFO's writer: a FIFO with none reads as empty. More than `max` bytes
//!   is `Failed` with `EFBIG` once `max` bytes are sent; the host counts
//!   too, and cuts off an agent that sends more.
//! - `Make` makes a directory (an existing directory is left as it is) or a
//!   symlink (replacing a file or symlink of that name, as `WriteFile`).
//! - `Stat` describes the path without following a final symlink: one
//!   [`Entry`] with an empty name, then, with `list` and for a directory,
//!   one per entry in it (without `.` and `..`), in `Entries` frames, then
//!   `Done`.
//!
//! A failure is `Failed` with its step (`resolve` for a path whose parent
//! does not resolve, else the request's own: `write`, `read`, `make`,
//! `stat`; `container` for a place that cannot be entered) and the errno.
//! Kinds 0x8A–0x8D and 0x8F are not used by this version.
//!
//! # Bounds (version 4)
//!
//! Every command runs in a process group of its own (with a terminal, its
//! own session). `Kill` ends the command `pid` (one the agent runs for any
//! session) and everything it started: its process group, its session and
//! every descendant found through `/proc`, with SIGKILL. Sent during a
//! command's session it is answered by that command's `Exited`; sent as
//! the first message of a session of its own (when the command's session is
//! held up by input the command does not read), by `Done`. `Ping` is
//! answered by a `Pong` with the same nonce: from a command's session while
//! it runs (the host pings a silent command to tell a slow command from a
//! guest that stopped answering), or as the first message of a session of
//! its own.
//!
//! # `Exec` and containers
//!
//! An [`ExecRequest`] runs its command in a [`Place`]: the VM's root
//! (`Vm`, version 1's only place), a new container (`Create`: a mount
//! namespace of its own whose root is a directory of the VM, with `/proc`,
//! `/sys`, a `/dev` and `/dev/pts` of its own, the VM's shared `/dev/shm`
//! and the binds asked for; it lives as long as this command), or a running container
//! (`Join`: the namespace and root of the container of that name).
//!
//! A container can also be built ahead of its command (version 3):
//! `Prepare` builds it as `Create` would and keeps it, with no process,
//! until `Discard` names it; its commands `Join` it. (The OCI runtime model:
//! `create` sets a container up, `start` only runs its process.) `Discard`
//! refuses a container that a command created (it lives as long as that
//! command).
//!
//! The `Exec`
//! request also carries resource limits and the user (uid, gid, groups) to
//! run as. Its body's encoding is in `control/exec.rs`; its values are
//! checked by [`ExecRequest::check`] on both ends.
//!
//! ```text
//! ExecRequest   exec, args, env, workdir, tty   as in version 1
//!               place    0 Vm | 1 Create ContainerSetup | 2 Join name
//!               rlimits  ≤ 16 × (resource u32, soft u64, hard u64)
//!               user     0 | 1 uid u32, gid u32, ≤ 65536 groups u32
//! ContainerSetup name, root, readonly flag, hostname (0 | 1 string),
//!               ≤ 1024 binds × (source, target, readonly flag)
//! ```

use std::io::{Read, Write};

mod check;
mod exec;
mod files;
mod frame;

pub use check::{
    ExecError, ExecField, ExecProblem, MAX_HOSTNAME_LEN, MAX_PATH_LEN, check_name, check_path,
    check_target, components,
};
pub use exec::{
    Bind, ContainerSetup, ExecRequest, MAX_BINDS, MAX_GROUPS, MAX_NAME_LEN, MAX_RLIMITS, Place,
    User,
};
pub use files::{
    Entry, EntryKind, FileError, FileField, FileTarget, MAX_ENTRIES, MAX_ENTRY_NAME_LEN, MAX_MODE,
    Make, check_entry_name, check_link, encoded_len,
};

pub use frame::ControlError;

use self::frame::{done, frame, read_frame};
use crate::{
    report::Report,
    spec::MAX_SPEC_LEN,
    wire::{Reader, WireError},
};

/// The vsock port the agent listens on.
pub const CONTROL_PORT: u32 = 0x4D43; // "MC"

/// The protocol version both sides send in `Hello` (2: `Exec` has a place,
/// resource limits and a user; 3: `Prepare` and `Discard`; 4: the file
/// requests, `Ping`, `Pong` and `Kill`, and every command in a process
/// group of its own).
pub const VERSION: u32 = 4;

/// The largest frame (an `Exec` request, which holds a command like a run
/// spec).
pub const MAX_FRAME_LEN: usize = MAX_SPEC_LEN;

/// The largest frame of any other kind.
pub const MAX_DATA_FRAME_LEN: usize = 1 << 20;

/// How much output or input one data frame carries at most (writers split
/// larger chunks).
pub const MAX_DATA: usize = 64 << 10;

/// A terminal size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// A message from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMessage {
    /// The first message.
    Hello {
        /// [`VERSION`].
        version: u32,
    },
    /// Execute a command (boxed: it is much larger than the other
    /// messages).
    Exec(Box<ExecRequest>),
    /// Input for the command; empty means end of input.
    Stdin(Vec<u8>),
    /// Send the command this signal.
    Signal(i32),
    /// The terminal was resized.
    Resize(WinSize),
    /// End the VM.
    Shutdown,
    /// Build this container and keep it, with no process, until a
    /// `Discard` (boxed, as `Exec`).
    Prepare(Box<ContainerSetup>),
    /// Forget the kept container of this name (its processes go on).
    Discard(Vec<u8>),
    /// Answer with a `Pong` carrying this nonce.
    Ping(u32),
    /// Kill the command the agent runs as `pid`, its process group, its
    /// session and its descendants (SIGKILL).
    Kill {
        /// The command's pid, as `Started` said.
        pid: u32,
    },
    /// Write the file at `target` with `mode`: its bytes follow in `Data`
    /// frames, the last one empty.
    WriteFile {
        /// Where.
        target: FileTarget,
        /// Its mode (at most [`MAX_MODE`]).
        mode: u32,
    },
    /// Bytes of the file being written; empty means its end.
    Data(Vec<u8>),
    /// Send the file at `target`, at most `max` bytes of it.
    ReadFile {
        /// Where.
        target: FileTarget,
        /// The most bytes the host accepts.
        max: u64,
    },
    /// Make a directory or a symlink at `target`.
    Make {
        /// Where.
        target: FileTarget,
        /// What.
        make: Make,
    },
    /// Describe `target` (and, with `list`, a directory's entries).
    Stat {
        /// Where.
        target: FileTarget,
        /// Whether a directory's entries follow its own.
        list: bool,
    },
}

/// A message from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMessage {
    /// The first message.
    Hello {
        /// [`VERSION`].
        version: u32,
    },
    /// The command runs, with this guest pid.
    Started {
        /// The pid.
        pid: u32,
    },
    /// Output on the command's stdout (or its terminal).
    Stdout(Vec<u8>),
    /// Output on the command's stderr.
    Stderr(Vec<u8>),
    /// The command ended.
    Exited(ExitKind),
    /// The command could not be started, or a `Prepare` or `Discard` not
    /// done (a [`Report::Failed`]).
    Failed(Report),
    /// A `Prepare`, a `Discard`, a file request or a `Kill` (in a session
    /// of its own) is done.
    Done,
    /// Bytes of the file being read.
    Data(Vec<u8>),
    /// Entries that a `Stat` describes.
    Entries(Vec<Entry>),
    /// The answer to a `Ping`, with its nonce.
    Pong(u32),
}

const EXEC: u8 = 0x02;
const PREPARE: u8 = 0x07;

/// Whether frames of `kind` (from the host) may be up to [`MAX_FRAME_LEN`].
fn large(kind: u8) -> bool {
    kind == EXEC || kind == PREPARE
}

impl HostMessage {
    /// The message as a frame.
    pub fn encode(&self) -> Result<Vec<u8>, ControlError> {
        match self {
            Self::Hello { version } => frame(0x01, |w| {
                w.u32(*version);
                Ok(())
            }),
            Self::Exec(request) => frame(EXEC, |w| exec::write_exec(w, request)),
            Self::Stdin(data) => frame(0x03, |w| w.bytes(data)),
            Self::Signal(signal) => frame(0x04, |w| {
                w.i32(*signal);
                Ok(())
            }),
            Self::Resize(size) => frame(0x05, |w| {
                w.u16(size.rows);
                w.u16(size.cols);
                Ok(())
            }),
            Self::Shutdown => frame(0x06, |_| Ok(())),
            Self::Prepare(setup) => frame(PREPARE, |w| exec::write_setup(w, setup)),
            Self::Discard(name) => frame(0x08, |w| w.string("discard", name)),
            Self::Ping(nonce) => frame(0x0E, |w| {
                w.u32(*nonce);
                Ok(())
            }),
            Self::Kill { pid } => frame(0x0F, |w| {
                w.u32(*pid);
                Ok(())
            }),
            Self::WriteFile { target, mode } => frame(0x09, |w| {
                files::write_target(w, target)?;
                w.u32(*mode);
                Ok(())
            }),
            Self::Data(data) => frame(0x0A, |w| w.bytes(data)),
            Self::ReadFile { target, max } => frame(0x0B, |w| {
                files::write_target(w, target)?;
                w.u64(*max);
                Ok(())
            }),
            Self::Make { target, make } => frame(0x0C, |w| {
                files::write_target(w, target)?;
                files::write_make(w, make)
            }),
            Self::Stat { target, list } => frame(0x0D, |w| {
                files::write_target(w, target)?;
                w.bool(*list);
                Ok(())
            }),
        }
    }

    /// Decodes a frame's kind and body.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(body);
        let message = match kind {
            0x01 => Self::Hello {
                version: r.u32("version")?,
            },
            EXEC => Self::Exec(Box::new(exec::read_exec(&mut r)?)),
            0x03 => Self::Stdin(r.bytes("stdin")?),
            0x04 => Self::Signal(r.i32("signal")?),
            0x05 => Self::Resize(WinSize {
                rows: r.u16("rows")?,
                cols: r.u16("cols")?,
            }),
            0x06 => Self::Shutdown,
            PREPARE => Self::Prepare(Box::new(exec::read_setup(&mut r)?)),
            0x08 => Self::Discard(r.string("discard")?),
            0x0E => Self::Ping(r.u32("nonce")?),
            0x0F => Self::Kill { pid: r.u32("pid")? },
            0x09 => Self::WriteFile {
                target: files::read_target(&mut r)?,
                mode: r.u32("file.mode")?,
            },
            0x0A => Self::Data(r.bytes("data")?),
            0x0B => Self::ReadFile {
                target: files::read_target(&mut r)?,
                max: r.u64("file.max")?,
            },
            0x0C => Self::Make {
                target: files::read_target(&mut r)?,
                make: files::read_make(&mut r)?,
            },
            0x0D => Self::Stat {
                target: files::read_target(&mut r)?,
                list: r.bool("stat.list")?,
            },
            kind => return Err(ControlError::UnknownKind { kind }),
        };
        done(&r)?;
        Ok(message)
    }

    /// Reads one message; `None` at a clean end of the connection.
    pub fn read(reader: &mut impl Read) -> Result<Option<Self>, ControlError> {
        read_frame(reader, large)?
            .map(|(kind, body)| Self::decode(kind, &body))
            .transpose()
    }

    /// Writes the message as one frame.
    pub fn write(&self, writer: &mut impl Write) -> Result<(), ControlError> {
        writer.write_all(&self.encode()?)?;
        Ok(writer.flush()?)
    }
}

impl AgentMessage {
    /// The message as a frame.
    pub fn encode(&self) -> Result<Vec<u8>, ControlError> {
        match self {
            Self::Hello { version } => frame(0x81, |w| {
                w.u32(*version);
                Ok(())
            }),
            Self::Started { pid } => frame(0x82, |w| {
                w.u32(*pid);
                Ok(())
            }),
            Self::Stdout(data) => frame(0x83, |w| w.bytes(data)),
            Self::Stderr(data) => frame(0x84, |w| w.bytes(data)),
            Self::Exited(how) => frame(0x85, |w| {
                let (kind, value) = match how {
                    ExitKind::Code(code) => (0, *code),
                    ExitKind::Signal(signal) => (1, *signal),
                };
                w.u8(kind);
                w.i32(value);
                Ok(())
            }),
            Self::Failed(report) => frame(0x86, |w| w.bytes(report.encode().as_bytes())),
            Self::Done => frame(0x87, |_| Ok(())),
            Self::Pong(nonce) => frame(0x8E, |w| {
                w.u32(*nonce);
                Ok(())
            }),
            Self::Data(data) => frame(0x88, |w| w.bytes(data)),
            Self::Entries(entries) => frame(0x89, |w| files::write_entries(w, entries)),
        }
    }

    /// Decodes a frame's kind and body.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, ControlError> {
        let mut r = Reader::new(body);
        let message = match kind {
            0x81 => Self::Hello {
                version: r.u32("version")?,
            },
            0x82 => Self::Started { pid: r.u32("pid")? },
            0x83 => Self::Stdout(r.bytes("stdout")?),
            0x84 => Self::Stderr(r.bytes("stderr")?),
            0x85 => {
                let how = r.u8("exit.kind")?;
                let value = r.i32("exit.value")?;
                Self::Exited(match how {
                    0 => ExitKind::Code(value),
                    1 => ExitKind::Signal(value),
                    kind => return Err(ControlError::UnknownKind { kind }),
                })
            }
            0x86 => {
                let line = r.bytes("failed")?;
                match Report::parse(&line) {
                    Ok(report @ Report::Failed { .. }) => Self::Failed(report),
                    _ => return Err(ControlError::Body(WireError::Truncated { field: "failed" })),
                }
            }
            0x87 => Self::Done,
            0x8E => Self::Pong(r.u32("nonce")?),
            0x88 => Self::Data(r.bytes("data")?),
            0x89 => Self::Entries(files::read_entries(&mut r)?),
            kind => return Err(ControlError::UnknownKind { kind }),
        };
        done(&r)?;
        Ok(message)
    }

    /// Reads one message; `None` at a clean end of the connection.
    pub fn read(reader: &mut impl Read) -> Result<Option<Self>, ControlError> {
        read_frame(reader, |_| false)?
            .map(|(kind, body)| Self::decode(kind, &body))
            .transpose()
    }

    /// Writes the message as one frame.
    pub fn write(&self, writer: &mut impl Write) -> Result<(), ControlError> {
        writer.write_all(&self.encode()?)?;
        Ok(writer.flush()?)
    }
}

#[cfg(test)]
mod tests;
