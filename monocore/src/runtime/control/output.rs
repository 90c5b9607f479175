//! The output of a command running in a VM: the thread that reads its
//! connection and hands stdout and stderr to where they go, as they come;
//! until an abort or a lost connection ends them at once.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsFd, BorrowedFd},
        unix::net::UnixStream,
    },
    time::Instant,
};

use monocore_agent::control::AgentMessage;

use super::{command::GuestOutput, process::Shared};
use crate::error::{ControlError, MonocoreResult};

/// Where one output stream goes.
#[derive(Debug)]
pub(super) enum Sink {
    Inherit,
    Pipe(File),
}

impl Sink {
    /// Writes all of `data`, unless `wake` fires first (`false`, as for a
    /// reader that went away).
    fn write(&mut self, data: &[u8], stderr: bool, wake: BorrowedFd<'_>) -> bool {
        let fd = match &*self {
            Sink::Pipe(file) => file.as_fd(),
            Sink::Inherit if stderr => rustix::stdio::stderr(),
            Sink::Inherit => rustix::stdio::stdout(),
        };
        write_all_fd(fd, data, Some(wake)).is_ok()
    }
}

/// Writes all of `data` to `fd`, waiting while it would block (a pipe whose
/// reader is behind; a terminal shared with another process, which the
/// VMM's libkrun makes non-blocking), until `wake`, if given, fires.
pub(crate) fn write_all_fd(
    fd: BorrowedFd<'_>,
    mut data: &[u8],
    wake: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags};
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or(&[]),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = vec![PollFd::new(&fd, PollFlags::OUT)];
                fds.extend(wake.as_ref().map(|w| PollFd::new(w, PollFlags::IN)));
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
                if fds.get(1).is_some_and(|w| !w.revents().is_empty()) {
                    return Err(io::ErrorKind::Interrupted.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until `conn` has something to read; `true` if `wake` fired first.
fn woken_before_input(conn: &UnixStream, wake: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags};
    loop {
        let mut fds = [
            PollFd::new(conn, PollFlags::IN),
            PollFd::new(&wake, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
            Ok(_) => return fds.get(1).is_some_and(|w| !w.revents().is_empty()),
        }
    }
}

/// Hands `data` to `sink`, if there is one; a sink that fails (its reader
/// went away, or the streams were ended) is dropped.
fn deliver(sink: &mut Option<Sink>, data: &[u8], stderr: bool, shared: &Shared) {
    if let Some(out) = sink.as_mut() {
        shared.lock().delivering = true;
        let delivered = out.write(data, stderr, shared.wake.fd());
        shared.lock().delivering = false;
        if !delivered {
            *sink = None;
        }
    }
}

pub(super) fn read_output(
    mut conn: UnixStream,
    mut stdout: Option<Sink>,
    mut stderr: Option<Sink>,
    shared: &Shared,
) {
    let lost = loop {
        if (stdout.is_some() || stderr.is_some()) && woken_before_input(&conn, shared.wake.fd()) {
            // Closing the pipes ends the readers' streams now.
            stdout = None;
            stderr = None;
        }
        let message = AgentMessage::read(&mut conn);
        if let Ok(Some(_)) = message {
            shared.lock().heard = Instant::now();
        }
        match message {
            Ok(Some(AgentMessage::Stdout(data))) => deliver(&mut stdout, &data, false, shared),
            Ok(Some(AgentMessage::Stderr(data))) => deliver(&mut stderr, &data, true, shared),
            Ok(Some(AgentMessage::Pong(_))) => {}
            Ok(Some(AgentMessage::Exited(kind))) => {
                shared.lock().exited = Some(kind);
                break None;
            }
            Ok(Some(other)) => {
                break Some(ControlError::Unexpected {
                    request: "Exec",
                    got: super::kind_name(&other),
                });
            }
            Ok(None) => break Some(ControlError::Ended),
            Err(e) => break Some(e.into()),
        }
    };
    drop((stdout, stderr));
    if let Some(reason) = lost {
        // A reason the watch gave first (it closed the connection) stays.
        shared.lock().lost.get_or_insert(reason);
    }
    shared.changed.notify_all();
}

/// A pipe for a piped stream: (what the caller reads, where output goes,
/// non-blocking so that writing it can be given up).
pub(super) fn pipe(mode: GuestOutput) -> MonocoreResult<(Option<File>, Option<Sink>)> {
    Ok(match mode {
        GuestOutput::Inherit => (None, Some(Sink::Inherit)),
        GuestOutput::Null => (None, None),
        GuestOutput::Piped => {
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            rustix::fs::fcntl_setfl(&write, rustix::fs::OFlags::NONBLOCK)?;
            (Some(File::from(read)), Some(Sink::Pipe(File::from(write))))
        }
    })
}
