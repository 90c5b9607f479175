//! [`GuestProcess`]: a command running in a VM, over one control
//! connection: its input, its output (read by a thread of its own) and its
//! exit status.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::unix::net::UnixStream,
    sync::{Arc, Condvar, Mutex, PoisonError},
    time::{Duration, Instant},
};

use monocore_agent::control::{AgentMessage, ExitKind, HostMessage, MAX_DATA, WinSize};

use super::command::{GuestCommand, GuestOutput, GuestOutputs};
use crate::{
    error::{ControlError, MonocoreResult},
    runtime::VmExitStatus,
};

#[derive(Debug, Default)]
struct State {
    exited: Option<ExitKind>,
    /// The connection ended (or broke) before `Exited`.
    lost: Option<ControlError>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A command running in a VM. Made by [`VmHandle::exec`].
///
/// Dropping it kills the command if it still runs.
///
/// [`VmHandle::exec`]: crate::vm::VmHandle::exec
#[derive(Debug)]
pub struct GuestProcess {
    pid: u32,
    conn: Arc<Mutex<UnixStream>>,
    shared: Arc<Shared>,
    stdin: Option<GuestStdin>,
    stdout: Option<File>,
    stderr: Option<File>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The command's input: writes become `Stdin` frames; dropping it ends the
/// input.
#[derive(Debug)]
pub struct GuestStdin {
    conn: Arc<Mutex<UnixStream>>,
}

/// Sends signals (and terminal sizes) to a [`GuestProcess`] from another
/// thread while one waits for it. Made by [`GuestProcess::signaller`]; a signal to a command that
/// has ended does nothing.
#[derive(Debug, Clone)]
pub struct GuestSignaller {
    conn: Arc<Mutex<UnixStream>>,
}

impl GuestSignaller {
    /// Sends the command signal `signal` (a Linux signal number).
    pub fn signal(&self, signal: i32) -> MonocoreResult<()> {
        send_on(&self.conn, &HostMessage::Signal(signal)).map_err(Into::into)
    }

    /// Resizes the command's terminal (see [`GuestProcess::resize`]).
    pub fn resize(&self, rows: u16, cols: u16) -> MonocoreResult<()> {
        send_on(&self.conn, &HostMessage::Resize(WinSize { rows, cols })).map_err(Into::into)
    }
}

/// Writes one frame; frames from several threads never interleave.
fn send_on(conn: &Mutex<UnixStream>, message: &HostMessage) -> Result<(), ControlError> {
    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    message.write(&mut *conn).map_err(ControlError::from)
}

impl Write for GuestStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let chunk = buf.get(..buf.len().min(MAX_DATA)).unwrap_or(buf);
        send_on(&self.conn, &HostMessage::Stdin(chunk.to_vec())).map_err(io::Error::other)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for GuestStdin {
    fn drop(&mut self) {
        let _ = send_on(&self.conn, &HostMessage::Stdin(Vec::new()));
    }
}

#[derive(Debug)]
enum Sink {
    Inherit,
    Pipe(File),
}

impl Sink {
    fn write(&mut self, data: &[u8], stderr: bool) -> bool {
        match self {
            Sink::Pipe(file) => file.write_all(data).is_ok(),
            Sink::Inherit if stderr => write_all_fd(rustix::stdio::stderr(), data).is_ok(),
            Sink::Inherit => write_all_fd(rustix::stdio::stdout(), data).is_ok(),
        }
    }
}

/// Writes all of `data` to `fd`, waiting while it would block: a terminal
/// shared with another process (the VMM's libkrun makes its console
/// non-blocking) may be in non-blocking mode.
pub(crate) fn write_all_fd(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags};
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or(&[]),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                rustix::event::poll(&mut fds, None)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn read_output(
    mut conn: UnixStream,
    mut stdout: Option<Sink>,
    mut stderr: Option<Sink>,
    shared: &Shared,
) {
    let lost = loop {
        match AgentMessage::read(&mut conn) {
            Ok(Some(AgentMessage::Stdout(data))) => {
                if let Some(sink) = stdout.as_mut()
                    && !sink.write(&data, false)
                {
                    // The reader went away: discard from now on.
                    stdout = None;
                }
            }
            Ok(Some(AgentMessage::Stderr(data))) => {
                if let Some(sink) = stderr.as_mut()
                    && !sink.write(&data, true)
                {
                    stderr = None;
                }
            }
            Ok(Some(AgentMessage::Exited(kind))) => {
                let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                state.exited = Some(kind);
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
    // Closing the pipes ends the readers' streams.
    drop((stdout, stderr));
    if let Some(reason) = lost {
        shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lost = Some(reason);
    }
    shared.changed.notify_all();
}

fn status(kind: ExitKind) -> VmExitStatus {
    match kind {
        ExitKind::Code(code) => VmExitStatus::from_parts(Some(code), None),
        ExitKind::Signal(signal) => VmExitStatus::from_parts(None, Some(signal)),
    }
}

impl GuestProcess {
    /// The process the agent behind `conn` started for `command` as guest
    /// pid `pid`: its output pipes and the thread that reads its output.
    pub(crate) fn start(
        conn: UnixStream,
        pid: u32,
        command: &GuestCommand,
    ) -> MonocoreResult<Self> {
        let pipe = |mode: GuestOutput| -> MonocoreResult<(Option<File>, Option<Sink>)> {
            Ok(match mode {
                GuestOutput::Inherit => (None, Some(Sink::Inherit)),
                GuestOutput::Null => (None, None),
                GuestOutput::Piped => {
                    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                    (Some(File::from(read)), Some(Sink::Pipe(File::from(write))))
                }
            })
        };
        let (stdout, out_sink) = pipe(command.stdout)?;
        let (stderr, err_sink) = pipe(command.stderr)?;
        // With a terminal, stderr arrives on stdout.
        let err_sink = err_sink.filter(|_| command.request.tty.is_none());
        let shared = Arc::new(Shared::default());
        let reader = {
            let conn = conn.try_clone()?;
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("monocore-exec".into())
                .spawn(move || read_output(conn, out_sink, err_sink, &shared))?
        };
        let conn = Arc::new(Mutex::new(conn));
        Ok(Self {
            pid,
            stdin: Some(GuestStdin {
                conn: Arc::clone(&conn),
            }),
            conn,
            shared,
            stdout,
            stderr,
            reader: Some(reader),
        })
    }

    /// The command's pid in the guest.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Its input; `None` once taken.
    pub fn take_stdin(&mut self) -> Option<GuestStdin> {
        self.stdin.take()
    }

    /// Its stdout, if piped; `None` once taken.
    pub fn take_stdout(&mut self) -> Option<File> {
        self.stdout.take()
    }

    /// Its stderr, if piped; `None` once taken.
    pub fn take_stderr(&mut self) -> Option<File> {
        self.stderr.take()
    }

    /// A handle that signals this command from another thread, while
    /// this one [`wait`](Self::wait)s.
    pub fn signaller(&self) -> GuestSignaller {
        GuestSignaller {
            conn: Arc::clone(&self.conn),
        }
    }

    fn send(&self, message: &HostMessage) -> MonocoreResult<()> {
        send_on(&self.conn, message).map_err(Into::into)
    }

    /// Sends the command `signal`.
    pub fn signal(&self, signal: i32) -> MonocoreResult<()> {
        self.send(&HostMessage::Signal(signal))
    }

    /// Kills the command (SIGKILL). Killing one that ended does nothing.
    pub fn kill(&self) -> MonocoreResult<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        self.signal(9)
    }

    /// Tells the command's terminal its new size.
    pub fn resize(&self, rows: u16, cols: u16) -> MonocoreResult<()> {
        self.send(&HostMessage::Resize(WinSize { rows, cols }))
    }

    /// How the command ended, if it has.
    pub fn try_wait(&self) -> MonocoreResult<Option<VmExitStatus>> {
        let state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Self::outcome(&state)
    }

    fn outcome(state: &State) -> MonocoreResult<Option<VmExitStatus>> {
        match (&state.exited, &state.lost) {
            (Some(kind), _) => Ok(Some(status(*kind))),
            (None, Some(reason)) => Err(reason.clone().into()),
            (None, None) => Ok(None),
        }
    }

    /// Waits for the command to end, at most `timeout`: `Ok(None)` means it
    /// still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> MonocoreResult<Option<VmExitStatus>> {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(status) = Self::outcome(&state)? {
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for the command to end. Its input is closed first; read piped
    /// output while waiting (or use [`wait_with_output`](Self::wait_with_output)):
    /// unread output holds the command back, as with a host process.
    pub fn wait(&mut self) -> MonocoreResult<VmExitStatus> {
        loop {
            if let Some(status) = self.wait_timeout(Duration::from_secs(3600))? {
                return Ok(status);
            }
        }
    }

    /// Closes its input, reads all piped output and waits for it to end.
    pub fn wait_with_output(mut self) -> MonocoreResult<GuestOutputs> {
        self.stdin = None;
        let err_reader = self.stderr.take().map(|mut f| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = f.read_to_end(&mut buf);
                buf
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut f) = self.stdout.take() {
            f.read_to_end(&mut stdout)?;
        }
        let stderr = err_reader.and_then(|t| t.join().ok()).unwrap_or_default();
        let status = self.wait()?;
        Ok(GuestOutputs {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for GuestProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.try_wait() {
            let _ = self.signal(9);
        }
        self.stdin = None;
        if let Ok(conn) = self.conn.lock() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
