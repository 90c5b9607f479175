//! The host's end of one command's control connection ([`Channel`]),
//! shared by its [`GuestProcess`](super::GuestProcess), input, signallers
//! and watch thread; the sessions of their own that ask the agent past a
//! held-up connection ([`aside`]); and a connect that never blocks.

use std::{
    io,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::net::UnixStream,
    },
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError, TryLockError},
    time::{Duration, Instant},
};

use monocore_agent::control::{AgentMessage, HostMessage};

use super::bounds::{Bounds, is_timeout};
use crate::error::ControlError;

/// One command's connection.
#[derive(Debug)]
pub(super) struct Channel {
    /// The writing end: frames from several threads never interleave.
    stream: Mutex<UnixStream>,
    /// The same socket, for closing it without waiting for a writer.
    raw: UnixStream,
    /// Since when a write has been under way.
    writing_since: Mutex<Option<Instant>>,
    /// The control socket, for sessions of their own.
    socket: Option<PathBuf>,
    /// The command's guest pid.
    pub(super) pid: u32,
    pub(super) bounds: Bounds,
}

impl Channel {
    pub(super) fn new(
        conn: UnixStream,
        socket: Option<PathBuf>,
        pid: u32,
        bounds: Bounds,
    ) -> io::Result<Self> {
        Ok(Self {
            raw: conn.try_clone()?,
            stream: Mutex::new(conn),
            writing_since: Mutex::new(None),
            socket,
            pid,
            bounds,
        })
    }

    fn write(&self, conn: &mut UnixStream, message: &HostMessage) -> Result<(), ControlError> {
        *self
            .writing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let written = message.write(conn).map_err(ControlError::from);
        *self
            .writing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        written
    }

    /// Writes one frame, waiting for another writer to finish first.
    pub(super) fn send(&self, message: &HostMessage) -> Result<(), ControlError> {
        let mut conn = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        self.write(&mut conn, message)
    }

    /// Writes one frame unless another write is under way (`None`).
    pub(super) fn try_send(&self, message: &HostMessage) -> Option<Result<(), ControlError>> {
        let mut conn = match self.stream.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(self.write(&mut conn, message))
    }

    /// How long the write under way has been, if one is.
    pub(super) fn writing_for(&self) -> Option<Duration> {
        self.writing_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|since| since.elapsed())
    }

    /// Ends the connection both ways: a read of it returns its end, a
    /// write fails; the agent kills the command when it sees the end.
    pub(super) fn close(&self) {
        let _ = self.raw.shutdown(std::net::Shutdown::Both);
    }

    /// Kills the command: on its connection if no write holds it up, else
    /// on a session of its own (at most `wait`).
    pub(super) fn kill(&self, wait: Duration) -> Result<(), ControlError> {
        match self.try_send(&HostMessage::Kill { pid: self.pid }) {
            Some(sent) => sent,
            None => self.kill_aside(wait),
        }
    }

    /// Kills the command on a session of its own (at most `wait`).
    pub(super) fn kill_aside(&self, wait: Duration) -> Result<(), ControlError> {
        let socket = self.socket.as_deref().ok_or(ControlError::Ended)?;
        aside(socket, &HostMessage::Kill { pid: self.pid }, wait)
    }

    /// Whether the agent answers a `Ping` on a session of its own within
    /// the bounds' `answer`.
    pub(super) fn ping_aside(&self) -> Result<(), ControlError> {
        let socket = self.socket.as_deref().ok_or(ControlError::Ended)?;
        aside(socket, &HostMessage::Ping(0), self.bounds.answer)
    }
}

/// Connects to the Unix socket `path` without ever blocking: a listener
/// that does not accept (a stopped VMM) and whose queue is full is
/// `WouldBlock` at once.
pub(super) fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::io::ioctl_fionbio(&fd, false)?;
    Ok(UnixStream::from(fd))
}

/// A session of its own for `message` (`Kill`, answered by `Done`; `Ping`,
/// by `Pong`): connect, `Hello`, the message, its answer, each within
/// `wait`.
pub(super) fn aside(
    socket: &Path,
    message: &HostMessage,
    wait: Duration,
) -> Result<(), ControlError> {
    let request = super::request_name(message);
    let unresponsive = ControlError::Unresponsive {
        request,
        waited: wait,
    };
    let conn = match connect_unix(socket) {
        Ok(conn) => conn,
        Err(e) if is_timeout(&e) => return Err(unresponsive),
        Err(e) => return Err(e.into()),
    };
    let mut conn = super::greet(conn, wait)?.ok_or(ControlError::Ended)?;
    let answer = message
        .write(&mut conn)
        .and_then(|()| AgentMessage::read(&mut conn));
    match answer {
        Ok(Some(AgentMessage::Done | AgentMessage::Pong(_))) => Ok(()),
        Ok(Some(other)) => Err(ControlError::Unexpected {
            request,
            got: super::kind_name(&other),
        }),
        Ok(None) => Err(ControlError::Ended),
        Err(monocore_agent::control::ControlError::Io(e)) if is_timeout(&e) => Err(unresponsive),
        Err(e) => Err(e.into()),
    }
}

/// A pipe whose read end becomes readable, for good, once it is fired:
/// what the output reader polls beside the connection and its sinks, so
/// that an abort or a lost connection ends the output streams at once.
#[derive(Debug)]
pub(super) struct Wake {
    read: OwnedFd,
    write: OwnedFd,
}

impl Wake {
    pub(super) fn new() -> io::Result<Self> {
        use rustix::pipe::PipeFlags;
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        Ok(Self { read, write })
    }

    pub(super) fn fire(&self) {
        let _ = rustix::io::write(&self.write, &[1]);
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}
