//! Running more commands in a running VM: [`VmHandle::exec`] and
//! [`GuestProcess`], over the guest agent's control channel.
//!
//! Each VM's agent listens on a vsock port that libkrun maps to a Unix
//! socket in the VM's run directory on the host (outside the directory the
//! guest shares, so the guest cannot replace it). A [`GuestProcess`] is one
//! connection: the command, its input, its output and its exit status
//! (see `monocore_agent::control` for the protocol). Everything the agent
//! sends is hostile input: frames are bounded before they are read, and
//! nothing the guest sends names a host path or a host command.
//!
//! [`VmHandle::exec`]: super::VmHandle::exec

use std::{
    ffi::OsString,
    fs::File,
    io::{self, Read, Write},
    os::unix::{ffi::OsStrExt, net::UnixStream},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, PoisonError},
    time::{Duration, Instant},
};

use monocore_agent::control::{
    AgentMessage, ExecRequest, ExitKind, HostMessage, MAX_DATA, VERSION, WinSize,
};

use super::VmExitStatus;
use crate::{MonocoreError, MonocoreResult};

/// Where a command's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestOutput {
    /// To this process's stdout or stderr.
    #[default]
    Inherit,
    /// To a pipe read through [`GuestProcess::stdout`] or
    /// [`GuestProcess::stderr`].
    Piped,
    /// Discarded.
    Null,
}

/// A command to run in a running VM, built like [`std::process::Command`].
///
/// ```no_run
/// use monocore::vm::{GuestCommand, GuestOutput};
/// # fn demo(vm: &mut monocore::vm::VmHandle) -> monocore::MonocoreResult<()> {
/// let output = vm
///     .exec(GuestCommand::new("/bin/echo").arg("hello").stdout(GuestOutput::Piped))?
///     .wait_with_output()?;
/// assert_eq!(output.stdout, b"hello\n");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct GuestCommand {
    request: ExecRequest,
    stdout: GuestOutput,
    stderr: GuestOutput,
}

impl GuestCommand {
    /// Runs `program` (a path in the guest, or a name looked up in the
    /// command's `PATH`), with no arguments, an empty environment and `/`
    /// as its working directory.
    pub fn new(program: impl Into<OsString>) -> Self {
        let mut command = Self::default();
        command.request.exec = program.into().as_bytes().to_vec();
        command
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.request.args.push(arg.into().as_bytes().to_vec());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.request
            .args
            .extend(args.into_iter().map(|a| a.into().as_bytes().to_vec()));
        self
    }

    /// Sets an environment variable (the command gets only those set here).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let mut entry = name.into().as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.into().as_bytes());
        self.request.env.push(entry);
        self
    }

    /// Sets the working directory (a guest path).
    pub fn current_dir(mut self, dir: impl Into<OsString>) -> Self {
        self.request.workdir = dir.into().as_bytes().to_vec();
        self
    }

    /// Runs the command with a terminal of `rows` × `cols` (a
    /// pseudo-terminal in the guest): its output, stderr included, arrives
    /// on stdout, and input goes through the terminal's line discipline
    /// (`^C` interrupts it).
    pub fn tty(mut self, rows: u16, cols: u16) -> Self {
        self.request.tty = Some(WinSize { rows, cols });
        self
    }

    /// Where stdout goes (default: this process's stdout).
    pub fn stdout(mut self, output: GuestOutput) -> Self {
        self.stdout = output;
        self
    }

    /// Where stderr goes (default: this process's stderr).
    pub fn stderr(mut self, output: GuestOutput) -> Self {
        self.stderr = output;
        self
    }

    fn check(&self) -> MonocoreResult<()> {
        let nul = |field: &'static str, value: &[u8]| {
            value.contains(&0).then(|| MonocoreError::NulInString {
                field,
                value: String::from_utf8_lossy(value).into_owned(),
            })
        };
        let r = &self.request;
        let found = nul("exec", &r.exec)
            .or_else(|| nul("workdir", &r.workdir))
            .or_else(|| r.args.iter().find_map(|a| nul("args", a)))
            .or_else(|| r.env.iter().find_map(|e| nul("env", e)));
        found.map_or(Ok(()), Err)
    }
}

/// Output collected by [`GuestProcess::wait_with_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOutputs {
    /// How the command ended.
    pub status: VmExitStatus,
    /// What it wrote to stdout (if piped).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (if piped).
    pub stderr: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    exited: Option<ExitKind>,
    /// The connection ended (or broke) before `Exited`.
    lost: Option<String>,
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
/// [`VmHandle::exec`]: super::VmHandle::exec
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

/// Writes one frame; frames from several threads never interleave.
fn send_on(conn: &Mutex<UnixStream>, message: &HostMessage) -> io::Result<()> {
    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    message.write(&mut *conn).map_err(io::Error::other)
}

impl Write for GuestStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let chunk = buf.get(..buf.len().min(MAX_DATA)).unwrap_or(buf);
        send_on(&self.conn, &HostMessage::Stdin(chunk.to_vec()))?;
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

fn channel_error(message: impl Into<String>) -> MonocoreError {
    MonocoreError::Control {
        message: message.into(),
    }
}

/// Connects to the agent behind `socket` and exchanges `Hello`s. The agent
/// starts listening only once the VM has booted; until then libkrun closes
/// each connection at once, so this retries until `deadline`, or until
/// `alive` says the VM has ended.
pub(crate) fn connect(
    socket: &Path,
    deadline: Instant,
    alive: &mut dyn FnMut() -> bool,
) -> MonocoreResult<UnixStream> {
    let mut pause = Duration::from_millis(20);
    loop {
        let attempt = UnixStream::connect(socket).and_then(|mut conn| {
            HostMessage::Hello { version: VERSION }
                .write(&mut conn)
                .map_err(io::Error::other)?;
            match AgentMessage::read(&mut conn) {
                Ok(Some(AgentMessage::Hello { version: VERSION })) => Ok(Some(conn)),
                Ok(Some(AgentMessage::Hello { version })) => Err(io::Error::other(format!(
                    "the guest agent speaks control protocol version {version}, not {VERSION}"
                ))),
                // Not listening yet: libkrun ended the connection.
                Ok(None) | Err(monocore_agent::control::ControlError::Truncated) => Ok(None),
                Err(monocore_agent::control::ControlError::Io(e))
                    if e.kind() == io::ErrorKind::ConnectionReset =>
                {
                    Ok(None)
                }
                Ok(Some(other)) => Err(io::Error::other(format!(
                    "the guest agent answered {other:?} instead of Hello"
                ))),
                Err(e) => Err(io::Error::other(e)),
            }
        });
        match attempt {
            Ok(Some(conn)) => return Ok(conn),
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(channel_error(e.to_string())),
        }
        if !alive() {
            return Err(channel_error("the VM ended before its agent answered"));
        }
        if Instant::now() >= deadline {
            return Err(channel_error(format!(
                "the guest agent did not answer on {} in time",
                socket.display()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Asks the agent behind `conn` to end the VM.
pub(crate) fn shutdown(mut conn: UnixStream) -> MonocoreResult<()> {
    HostMessage::Shutdown
        .write(&mut conn)
        .map_err(|e| channel_error(e.to_string()))
}

/// Starts `command` on the agent behind `conn`.
pub(crate) fn start(mut conn: UnixStream, command: GuestCommand) -> MonocoreResult<GuestProcess> {
    command.check()?;
    HostMessage::Exec(command.request.clone())
        .write(&mut conn)
        .map_err(|e| channel_error(e.to_string()))?;
    let pid = match AgentMessage::read(&mut conn) {
        Ok(Some(AgentMessage::Started { pid })) => pid,
        Ok(Some(AgentMessage::Failed(monocore_agent::report::Report::Failed {
            step,
            errno,
            detail,
        }))) => {
            return Err(MonocoreError::GuestSetup {
                step,
                errno,
                detail,
            });
        }
        Ok(other) => {
            return Err(channel_error(format!(
                "the guest agent answered {other:?} to Exec"
            )));
        }
        Err(e) => return Err(channel_error(e.to_string())),
    };
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
    let shared = Arc::new(Shared::default());
    let reader = {
        let conn = conn.try_clone()?;
        let shared = Arc::clone(&shared);
        let stderr_sink = if command.request.tty.is_some() {
            None
        } else {
            err_sink
        };
        std::thread::Builder::new()
            .name("monocore-exec".into())
            .spawn(move || read_output(conn, out_sink, stderr_sink, &shared))?
    };
    let conn = Arc::new(Mutex::new(conn));
    Ok(GuestProcess {
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
            Ok(Some(other)) => break Some(format!("unexpected message from the agent: {other:?}")),
            Ok(None) => break Some("the connection to the guest agent ended".to_owned()),
            Err(e) => break Some(e.to_string()),
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

    fn send(&self, message: &HostMessage) -> MonocoreResult<()> {
        send_on(&self.conn, message).map_err(|e| channel_error(e.to_string()))
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
            (None, Some(reason)) => Err(channel_error(reason.clone())),
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

/// The Unix socket of the control channel in a run directory; Unix socket
/// paths are at most 107 bytes.
pub(crate) fn control_socket(run_dir: &Path) -> MonocoreResult<PathBuf> {
    let path = run_dir.join("control.sock");
    if path.as_os_str().len() > 107 {
        return Err(MonocoreError::RunDir {
            dir: run_dir.to_path_buf(),
            source: io::Error::other(format!(
                "its control socket path {} is longer than a Unix socket path may be (107 bytes); \
                 use a shorter runs directory (SpawnOptions::runs_dir or MONOCORE_CACHE_DIR)",
                path.display()
            )),
        });
    }
    Ok(path)
}
