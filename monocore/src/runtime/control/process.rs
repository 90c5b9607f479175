//! [`GuestProcess`]: a command running in a VM, over one control
//! connection: its input, its output (read by a thread of its own), its
//! exit status, and the thread that holds it to its bounds (`watch`).

use std::{
    fs::File,
    io::{self, Read, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use monocore_agent::control::{ExitKind, HostMessage, MAX_DATA, WinSize};

use super::{
    channel::{Channel, Wake},
    command::{GuestCommand, GuestOutputs},
    output::{pipe, read_output},
    watch,
};
use crate::{
    error::{ControlError, MonocoreError, MonocoreResult},
    runtime::VmExitStatus,
};

/// What the reader and the watch found.
#[derive(Debug)]
pub(super) struct State {
    pub(super) exited: Option<ExitKind>,
    /// The connection ended, broke or went unanswered before `Exited`.
    pub(super) lost: Option<ControlError>,
    /// When the agent last sent a frame.
    pub(super) heard: Instant,
    /// The reader is handing output to a stream that does not take it yet
    /// (unread): the agent's silence says nothing then.
    pub(super) delivering: bool,
    /// The timeout passed: the command is being killed.
    pub(super) timed_out: bool,
    /// No `Exited` came within the grace after a kill.
    pub(super) gave_up: bool,
    /// [`GuestSignaller::abort`] was called.
    pub(super) aborted: bool,
    /// The handle is being dropped.
    pub(super) dropped: bool,
}

impl State {
    /// Whether nothing more will change the outcome.
    pub(super) fn settled(&self) -> bool {
        self.exited.is_some() || self.lost.is_some() || self.gave_up
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    state: Mutex<State>,
    pub(super) changed: Condvar,
    /// Fired when the output streams must end now (an abort, a lost
    /// connection).
    pub(super) wake: Wake,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A command running in a VM. Made by [`VmHandle::exec`].
///
/// Every wait is bounded: a command with a
/// [`timeout`](GuestCommand::timeout) is killed when it passes, and a VM
/// that stops answering (frozen, or its agent gone) is found within
/// seconds (a running command's connection is checked with a `Ping` after
/// 2 s of silence, answered within 5 s): `wait` then returns
/// [`ControlError::Unresponsive`] and the output streams end.
///
/// Dropping it kills the command (and what it started) if it still runs.
///
/// [`VmHandle::exec`]: crate::vm::VmHandle::exec
#[derive(Debug)]
pub struct GuestProcess {
    pid: u32,
    channel: Arc<Channel>,
    shared: Arc<Shared>,
    timeout: Option<Duration>,
    stdin: Option<GuestStdin>,
    stdout: Option<File>,
    stderr: Option<File>,
    reader: Option<JoinHandle<()>>,
    watch: Option<JoinHandle<()>>,
}

/// The command's input: writes become `Stdin` frames; dropping it ends the
/// input.
#[derive(Debug)]
pub struct GuestStdin {
    channel: Arc<Channel>,
}

/// Signals, resizes, kills or aborts a [`GuestProcess`] from another
/// thread while one waits for it or reads its output. Made by
/// [`GuestProcess::signaller`]; a signal to a command that has ended does
/// nothing.
#[derive(Debug, Clone)]
pub struct GuestSignaller {
    channel: Arc<Channel>,
    shared: Arc<Shared>,
}

impl GuestSignaller {
    /// Sends the command signal `signal` (a Linux signal number).
    pub fn signal(&self, signal: i32) -> MonocoreResult<()> {
        self.channel
            .send(&HostMessage::Signal(signal))
            .map_err(Into::into)
    }

    /// Resizes the command's terminal (see [`GuestProcess::resize`]).
    pub fn resize(&self, rows: u16, cols: u16) -> MonocoreResult<()> {
        self.channel
            .send(&HostMessage::Resize(WinSize { rows, cols }))
            .map_err(Into::into)
    }

    /// Kills the command and everything it started (see
    /// [`GuestProcess::kill`]).
    pub fn kill(&self) -> MonocoreResult<()> {
        kill(&self.channel, &self.shared)
    }

    /// Aborts the command: its output streams end at once (a blocked read
    /// of [`take_stdout`](GuestProcess::take_stdout) or
    /// [`take_stderr`](GuestProcess::take_stderr) returns end of file;
    /// output still on its way is dropped), and the command is killed with
    /// everything it started. Its `wait` then returns how it ended (killed
    /// by SIGKILL), or [`ControlError::Unresponsive`] if the agent does
    /// not report its end within a short grace (5 s). Aborting a command
    /// that has ended only ends its streams.
    pub fn abort(&self) {
        abort(&self.shared);
    }
}

fn abort(shared: &Shared) {
    shared.lock().aborted = true;
    shared.wake.fire();
    shared.changed.notify_all();
}

fn kill(channel: &Channel, shared: &Shared) -> MonocoreResult<()> {
    if shared.lock().settled() {
        return Ok(());
    }
    channel.kill(channel.bounds.answer).map_err(Into::into)
}

impl Write for GuestStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let chunk = buf.get(..buf.len().min(MAX_DATA)).unwrap_or(buf);
        self.channel
            .send(&HostMessage::Stdin(chunk.to_vec()))
            .map_err(io::Error::other)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for GuestStdin {
    fn drop(&mut self) {
        let _ = self.channel.send(&HostMessage::Stdin(Vec::new()));
    }
}

fn status(kind: ExitKind) -> VmExitStatus {
    match kind {
        ExitKind::Code(code) => VmExitStatus::from_parts(Some(code), None),
        ExitKind::Signal(signal) => VmExitStatus::from_parts(None, Some(signal)),
    }
}

impl GuestProcess {
    /// The process the agent behind `conn` started for `command` as guest
    /// pid `pid`: its output pipes, the thread that reads its output, and
    /// the one that holds it to its bounds (`socket` is the control socket,
    /// for sessions of their own).
    pub(crate) fn start(
        conn: UnixStream,
        pid: u32,
        command: &GuestCommand,
        socket: Option<PathBuf>,
    ) -> MonocoreResult<Self> {
        let (stdout, out_sink) = pipe(command.stdout)?;
        let (stderr, err_sink) = pipe(command.stderr)?;
        // With a terminal, stderr arrives on stdout.
        let err_sink = err_sink.filter(|_| command.request.tty.is_none());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                exited: None,
                lost: None,
                heard: Instant::now(),
                delivering: false,
                timed_out: false,
                gave_up: false,
                aborted: false,
                dropped: false,
            }),
            changed: Condvar::new(),
            wake: Wake::new()?,
        });
        let reading = conn.try_clone()?;
        let channel = Arc::new(Channel::new(conn, socket, pid, command.bounds)?);
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("monocore-exec".into())
                .spawn(move || read_output(reading, out_sink, err_sink, &shared))?
        };
        let mut process = Self {
            pid,
            stdin: Some(GuestStdin {
                channel: Arc::clone(&channel),
            }),
            channel,
            shared,
            timeout: command.timeout,
            stdout,
            stderr,
            reader: Some(reader),
            watch: None,
        };
        let (channel, shared) = (Arc::clone(&process.channel), Arc::clone(&process.shared));
        let timeout = command.timeout;
        process.watch = Some(
            std::thread::Builder::new()
                .name("monocore-exec-watch".into())
                .spawn(move || watch::watch(&channel, &shared, timeout))?,
        );
        Ok(process)
    }

    /// The command's pid in the guest.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Its input; `None` once taken.
    pub fn take_stdin(&mut self) -> Option<GuestStdin> {
        self.stdin.take()
    }

    /// Its stdout, if piped; `None` once taken. It ends when the command
    /// has ended, is aborted, or its VM stops answering.
    pub fn take_stdout(&mut self) -> Option<File> {
        self.stdout.take()
    }

    /// Its stderr, if piped; `None` once taken (it ends as stdout does).
    pub fn take_stderr(&mut self) -> Option<File> {
        self.stderr.take()
    }

    /// A handle that signals, kills or aborts this command from another
    /// thread, while this one [`wait`](Self::wait)s or reads its output.
    pub fn signaller(&self) -> GuestSignaller {
        GuestSignaller {
            channel: Arc::clone(&self.channel),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Sends the command `signal`.
    pub fn signal(&self, signal: i32) -> MonocoreResult<()> {
        self.signaller().signal(signal)
    }

    /// Kills the command and everything it started (SIGKILL to its
    /// process group, its session and its descendants). Killing one that
    /// ended does nothing. The kill goes on the command's connection, or,
    /// while a write holds that up, on a session of its own (within 15 s).
    pub fn kill(&self) -> MonocoreResult<()> {
        kill(&self.channel, &self.shared)
    }

    /// Aborts the command (see [`GuestSignaller::abort`]).
    pub fn abort(&self) {
        abort(&self.shared);
    }

    /// Tells the command's terminal its new size.
    pub fn resize(&self, rows: u16, cols: u16) -> MonocoreResult<()> {
        self.signaller().resize(rows, cols)
    }

    /// How the command ended, if it has.
    pub fn try_wait(&self) -> MonocoreResult<Option<VmExitStatus>> {
        self.outcome(&self.shared.lock())
    }

    fn outcome(&self, state: &State) -> MonocoreResult<Option<VmExitStatus>> {
        if state.timed_out {
            return match state.settled() {
                true => Err(MonocoreError::CommandTimedOut {
                    timeout: self.timeout.unwrap_or_default(),
                    confirmed: state.exited.is_some(),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                }),
                false => Ok(None),
            };
        }
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
        let mut state = self.shared.lock();
        loop {
            if let Some(status) = self.outcome(&state)? {
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

    /// Closes its input, reads all piped output and waits for it to end. A
    /// command that times out is [`MonocoreError::CommandTimedOut`] with
    /// the output read until then.
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
        match self.wait() {
            Ok(status) => Ok(GuestOutputs {
                status,
                stdout,
                stderr,
            }),
            Err(MonocoreError::CommandTimedOut {
                timeout, confirmed, ..
            }) => Err(MonocoreError::CommandTimedOut {
                timeout,
                confirmed,
                stdout,
                stderr,
            }),
            Err(e) => Err(e),
        }
    }
}

impl Drop for GuestProcess {
    fn drop(&mut self) {
        let running = {
            let mut state = self.shared.lock();
            state.dropped = true;
            !state.settled()
        };
        self.shared.changed.notify_all();
        if running {
            // The agent kills the command when the connection ends; and
            // on a session of its own in case this one is held up (by
            // input the command does not read), off this thread: it is
            // bounded, but may take the agent's answer time.
            let channel = Arc::clone(&self.channel);
            let _ = std::thread::Builder::new()
                .name("monocore-exec-kill".into())
                .spawn(move || channel.kill_aside(channel.bounds.answer));
        }
        self.channel.close();
        self.shared.wake.fire();
        self.stdin = None;
        for thread in [self.watch.take(), self.reader.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}
