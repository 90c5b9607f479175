//! Running a VM in a child process: [`MicroVm::spawn`] and [`VmHandle`].

use std::{
    collections::VecDeque,
    ffi::OsString,
    fmt,
    io::{BufRead, BufReader, Read, Write},
    os::{fd::OwnedFd, unix::process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex, MutexGuard,
        mpsc::{self, Receiver},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use monocore_agent::report::Report;

use super::{
    LogLevel, MicroVm, agent,
    apply::Plan,
    helper::{self, ExitSource, HelperError, HelperRequest, Status, log_level::Level},
    run_dir::{self, RunDir},
    self_helper,
};
use crate::{MonocoreError, MonocoreResult, kernel::KernelChoice};

/// At most this much console output is kept when it is captured.
const MAX_CONSOLE: usize = 16 << 20;
/// At most this many lines of the VMM's log are kept.
const LOG_TAIL: usize = 64;
/// How long to wait for the helper's pipes to drain once it has exited.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How [`MicroVm::spawn_with`] runs the helper.
///
/// ```
/// use monocore::vm::SpawnOptions;
/// let options = SpawnOptions::new().capture_console(true);
/// assert!(options.is_capturing_console());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    console: Console,
    helper_path: Option<PathBuf>,
    helper_args: Vec<OsString>,
    kernel: KernelChoice,
    runs_dir: Option<PathBuf>,
    keep: bool,
    idle: bool,
}

/// Where the guest console goes.
#[derive(Debug, Clone, Default)]
enum Console {
    /// This process's stdout.
    #[default]
    Inherit,
    /// Kept for [`VmHandle::console_output`].
    Capture,
    /// Written straight to this file (a copy of the descriptor is the
    /// helper's stdout).
    File(Arc<OwnedFd>),
}

impl SpawnOptions {
    /// Defaults: the console goes to this process's stdout; the helper is
    /// this program itself (see [`MicroVm::spawn`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Capture the guest console (the guest's stdout and stderr, up to
    /// 16 MiB) for [`VmHandle::console_output`] instead of passing it to
    /// this process's stdout. `false` sends it to this process's stdout
    /// again (replacing [`console_to`](Self::console_to)).
    pub fn capture_console(mut self, capture: bool) -> Self {
        self.console = if capture {
            Console::Capture
        } else {
            Console::Inherit
        };
        self
    }

    /// Whether the console is captured.
    pub fn is_capturing_console(&self) -> bool {
        matches!(self.console, Console::Capture)
    }

    /// Send the guest console (the guest's stdout and stderr, merged) to
    /// `file` instead: a copy of the descriptor becomes the VM helper's
    /// stdout, so the output goes there directly, in full, with nothing in
    /// between (a pipe or FIFO, e.g. a container runtime's stdout FIFO, or
    /// a regular file). Replaces [`capture_console`](Self::capture_console);
    /// [`VmHandle::console_output`] then stays empty.
    ///
    /// ```
    /// use monocore::vm::SpawnOptions;
    /// let log = tempfile::tempfile()?;
    /// let options = SpawnOptions::new().console_to(log);
    /// assert!(options.is_console_to_file());
    /// assert!(!options.is_capturing_console());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn console_to(mut self, file: impl Into<OwnedFd>) -> Self {
        self.console = Console::File(Arc::new(file.into()));
        self
    }

    /// Whether the console goes to a file given to
    /// [`console_to`](Self::console_to).
    pub fn is_console_to_file(&self) -> bool {
        matches!(self.console, Console::File(_))
    }

    /// Boot this kernel instead of the one [`KernelChoice::Auto`] picks.
    pub fn kernel(mut self, kernel: KernelChoice) -> Self {
        self.kernel = kernel;
        self
    }

    /// Keep the VM running after its command has ended, serving
    /// [`VmHandle::exec`], until [`VmHandle::shutdown`] (or until the handle
    /// is dropped or the VM killed). Its exit status is then the command's.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Start no command at all: the VM only serves [`VmHandle::exec`] until
    /// [`VmHandle::shutdown`] (the config's `exec_path` and `args` are not
    /// run).
    pub fn idle(mut self, idle: bool) -> Self {
        self.idle = idle;
        self
    }

    /// Make the VM's private run directory in `dir` (created if needed; it
    /// must be private to this user) instead of `vms` in the
    /// [cache directory](crate::rootfs::cache_dir). It is removed when the
    /// VM has ended; see [`VmHandle`].
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = Some(dir.into());
        self
    }

    /// Run the VM in this separate helper binary instead of in this program
    /// (whose executable is its own helper by default). Its `main` must call
    /// [`helper_main`](crate::vm::helper_main).
    pub fn helper_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Arguments for the helper binary of [`helper_path`](Self::helper_path)
    /// (e.g. one on which its `main` dispatches to
    /// [`helper_main`](crate::vm::helper_main)). Without `helper_path` they
    /// are not used.
    pub fn helper_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.helper_args = args.into_iter().map(Into::into).collect();
        self
    }
}

/// How a spawned VM ended: the guest's exit code, or the signal that killed
/// the VM (after [`VmHandle::kill`], or from outside).
///
/// A VM that failed to boot is not a `VmExitStatus` but
/// [`MonocoreError::BootFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExitStatus {
    code: Option<i32>,
    signal: Option<i32>,
}

impl VmExitStatus {
    pub(crate) fn from_parts(code: Option<i32>, signal: Option<i32>) -> Self {
        Self { code, signal }
    }

    /// The guest's exit code; `None` if the VM was killed.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the VM, if it was killed.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// `true` when the guest exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for VmExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "guest exited with code {code}"),
            (None, Some(signal)) => write!(f, "VM killed by signal {signal}"),
            (None, None) => f.write_str("VM ended"),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    entered_at: Option<SystemTime>,
    failure: Option<HelperError>,
    exit_source: Option<ExitSource>,
    last_vmm_error: Option<String>,
    last_kernel_line: Option<String>,
    tail: VecDeque<String>,
    console: Vec<u8>,
    console_truncated: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic in a reader thread cannot leave `Shared` inconsistent: every
    // update is a single assignment.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A VM running in a child process. Made by [`MicroVm::spawn`].
///
/// Dropping the handle kills the VM and reaps the process: no orphan, no
/// zombie. If this whole process dies, the helper notices (its stdin, held
/// open by the handle, reaches EOF) and ends the VM too.
///
/// The VM's private run directory (its root with the guest agent) is removed
/// as soon as the VM has ended and been waited for or killed, and at the
/// latest when the handle is dropped. If this process is killed first, the
/// next VM started with the same runs directory sweeps it.
#[derive(Debug)]
pub struct VmHandle {
    child: Child,
    lifeline: Option<ChildStdin>,
    shared: Arc<Mutex<Shared>>,
    log_done: Receiver<()>,
    console_done: Option<Receiver<()>>,
    spawned_at: SystemTime,
    killed: bool,
    reaped: Option<ExitStatus>,
    // The VM's private root; removed once the VM has ended.
    run: Option<RunDir>,
}

impl MicroVm {
    /// Runs the VM in a child process and returns at once. The console goes
    /// to this process's stdout; see [`spawn_with`](Self::spawn_with) to
    /// capture it.
    ///
    /// The child is this program itself, executed again as the VM helper:
    /// nothing else to build, ship or configure, and nothing to call in
    /// `main`. It is recognised before its `main` runs, so the program's own
    /// code (its `main`, threads, signal handlers, logger, test harness)
    /// never runs in it; a program that cannot be its own helper (monocore
    /// in a shared library) gets [`MonocoreError::SelfHelper`] and nothing is
    /// started. See [`SpawnOptions::helper_path`] for a separate helper
    /// binary instead.
    ///
    /// This process resolves the kernel, makes the VM's private run
    /// directory (the guest agent and its run spec), and starts the helper,
    /// which receives the validated config over a pipe, validates it again,
    /// applies it and enters the VM.
    ///
    /// ```no_run
    /// use monocore::vm::{MicroVm, MicroVmConfig};
    /// let mut config = MicroVmConfig::new("/path/to/rootfs", 256);
    /// config.exec_path = Some("/bin/true".into());
    /// let mut vm = MicroVm::from_config(config)?.spawn()?;
    /// let status = vm.wait()?; // a boot failure is Err(BootFailed), not a code
    /// assert_eq!(status.code(), Some(0));
    /// # Ok::<(), monocore::MonocoreError>(())
    /// ```
    pub fn spawn(&self) -> MonocoreResult<VmHandle> {
        self.spawn_with(&SpawnOptions::default())
    }

    /// [`spawn`](Self::spawn) with options.
    pub fn spawn_with(&self, options: &SpawnOptions) -> MonocoreResult<VmHandle> {
        // Fail here, before any process starts, on a config this host
        // cannot run (see `check_support`).
        let kernel = options.kernel.resolve()?;
        super::host_facts::check(self.get_config(), &kernel, &crate::host::check_kvm_limits())?;
        let mut plan = Plan::new(self.get_config(), &kernel)?;
        if options.keep || options.idle {
            plan.spec.flags |= monocore_agent::spec::FLAG_KEEP;
        }
        if options.idle {
            plan.spec.flags |= monocore_agent::spec::FLAG_NO_MAIN;
        }
        // Before any file is made: can the helper start at all?
        let helper = match &options.helper_path {
            Some(path) => HelperProgram::Binary(path, &options.helper_args),
            None => HelperProgram::ThisProgram(self_helper::executable()?),
        };
        let config = self.get_config();
        let parent = options
            .runs_dir
            .clone()
            .unwrap_or_else(run_dir::default_parent);
        let run = RunDir::create(&parent)?;
        agent::install(&run.guest_root(), &plan.spec)?;
        let request = HelperRequest {
            config: config.clone(),
            kernel,
            guest_root: run.guest_root(),
        };
        let json = serde_json::to_vec(&request).map_err(|e| MonocoreError::HelperFailed {
            message: format!("could not serialize the config: {e}"),
        })?;
        // The helper refuses a larger config; say so before starting it.
        if json.len() > monocore_rules::limits::MAX_HELPER_CONFIG_LEN {
            return Err(MonocoreError::HelperFailed {
                message: format!(
                    "the config is {} bytes of JSON: at most {} bytes can be sent to the helper",
                    json.len(),
                    monocore_rules::limits::MAX_HELPER_CONFIG_LEN
                ),
            });
        }

        let mut command = helper.command();
        command
            .env_clear()
            .env("RUST_LOG", helper::log_filter(config.log_level))
            .env("RUST_LOG_STYLE", "never")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(match &options.console {
                Console::Inherit => Stdio::inherit(),
                Console::Capture => Stdio::piped(),
                Console::File(fd) => {
                    Stdio::from(fd.try_clone().map_err(|e| MonocoreError::HelperFailed {
                        message: format!("could not pass the console file to the helper: {e}"),
                    })?)
                }
            });
        // libkrun dlopens libkrunfw.so.5; keep the library search path.
        if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
            command.env("LD_LIBRARY_PATH", path);
        }
        let spawned_at = SystemTime::now();
        let mut child = command.spawn().map_err(|e| MonocoreError::HelperFailed {
            message: format!("could not start {helper}: {e}"),
        })?;
        // The child has executed it (or failed to): it can be closed.
        drop(helper);

        let shared = Arc::new(Mutex::new(Shared::default()));
        let (log_tx, log_done) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let shared = Arc::clone(&shared);
            let forward = config.log_level;
            std::thread::Builder::new()
                .name("monocore-vmm-log".into())
                .spawn(move || {
                    read_log(stderr, &shared, forward);
                    let _ = log_tx.send(());
                })?;
        }
        let console_done = match child.stdout.take() {
            Some(stdout) => {
                let (tx, rx) = mpsc::channel();
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("monocore-vmm-console".into())
                    .spawn(move || {
                        read_console(stdout, &shared);
                        let _ = tx.send(());
                    })?;
                Some(rx)
            }
            None => None,
        };

        let mut handle = VmHandle {
            lifeline: child.stdin.take(),
            child,
            shared,
            log_done,
            console_done,
            spawned_at,
            killed: false,
            reaped: None,
            run: Some(run),
        };
        handle.record(config)?;
        if let Some(stdin) = handle.lifeline.as_mut() {
            let sent = stdin
                .write_all(format!("{}\n", json.len()).as_bytes())
                .and_then(|()| stdin.write_all(&json))
                .and_then(|()| stdin.flush());
            // A broken pipe means the helper died early; `wait` reports why.
            if let Err(e) = sent
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
        }
        Ok(handle)
    }
}

/// The program a VM helper runs.
#[derive(Debug)]
enum HelperProgram<'a> {
    /// This program, executed again (the default).
    ThisProgram(self_helper::Executable),
    /// A separate helper binary, with these arguments.
    Binary(&'a Path, &'a [OsString]),
}

impl HelperProgram<'_> {
    fn command(&self) -> Command {
        match self {
            Self::ThisProgram(exe) => exe.command(),
            Self::Binary(path, args) => {
                let mut command = Command::new(path);
                command.args(*args);
                command
            }
        }
    }
}

impl fmt::Display for HelperProgram<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ThisProgram(_) => f.write_str("this program as the VM helper"),
            Self::Binary(path, _) => write!(f, "{}", path.display()),
        }
    }
}

fn read_log(stderr: impl Read, shared: &Mutex<Shared>, forward: LogLevel) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(64 << 10).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        let mut state = lock(shared);
        if let Some(status) = helper::parse_status(line) {
            match status {
                Status::Ready(nanos) => {
                    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
                    state.entered_at = UNIX_EPOCH.checked_add(Duration::from_nanos(nanos));
                }
                Status::Failed(error) => {
                    state.failure.get_or_insert(error);
                }
            }
            continue;
        }
        let mut show = forward != LogLevel::Off;
        if let Some(record) = helper::parse_log_line(line) {
            show = (record.level as u32) <= (forward as u32);
            if let Some(source) = helper::parse_exit_source(&record) {
                state.exit_source = Some(source);
            } else if record.target == "init_or_kernel" {
                state.last_kernel_line = Some(record.message.to_owned());
            } else if record.level == Level::Error {
                state.last_vmm_error = Some(record.message.to_owned());
            }
        }
        if state.tail.len() >= LOG_TAIL {
            state.tail.pop_front();
        }
        state.tail.push_back(line.to_owned());
        drop(state);
        if show {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

fn read_console(mut stdout: impl Read, shared: &Mutex<Shared>) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut state = lock(shared);
        let room = MAX_CONSOLE.saturating_sub(state.console.len());
        let chunk = buf.get(..n.min(room)).unwrap_or(&[]);
        state.console.extend_from_slice(chunk);
        if n > room {
            state.console_truncated = true;
        }
    }
}

impl VmHandle {
    /// The VM's ID: the name of its run directory without `run-` (what
    /// [`RunningVm`](super::RunningVm) and `monocore ps` show).
    pub fn id(&self) -> Option<String> {
        let run = self.run.as_ref()?;
        let guest = run.guest_root();
        let name = guest.parent()?.file_name()?.to_str()?;
        name.strip_prefix("run-").map(str::to_owned)
    }

    /// Records the VM for [`RunningVm`](super::RunningVm).
    fn record(&self, config: &super::MicroVmConfig) -> MonocoreResult<()> {
        let Some(run) = &self.run else { return Ok(()) };
        let guest = run.guest_root();
        let dir = guest.parent().unwrap_or(&guest);
        let command = config
            .exec_path
            .iter()
            .map(|p| p.as_str().to_owned())
            .chain(config.args.iter().cloned())
            .collect();
        let started = self
            .spawned_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        super::running::write_meta(
            dir,
            &super::running::Meta {
                pid: self.child.id(),
                command,
                started,
            },
        )
    }

    /// The Unix socket of the guest agent's control channel.
    fn control_socket(&self) -> MonocoreResult<PathBuf> {
        let run = self.run.as_ref().ok_or_else(|| MonocoreError::Control {
            message: "the VM has ended".to_owned(),
        })?;
        let guest = run.guest_root();
        super::exec::control_socket(guest.parent().unwrap_or(&guest))
    }

    /// Connects to the guest agent, waiting while the VM boots (at most
    /// `timeout`, and no longer than the VM runs).
    fn connect(&mut self, timeout: Duration) -> MonocoreResult<std::os::unix::net::UnixStream> {
        let socket = self.control_socket()?;
        let child = &mut self.child;
        super::exec::connect(&socket, Instant::now() + timeout, &mut || {
            matches!(child.try_wait(), Ok(None))
        })
    }

    /// Runs `command` in the running VM (a second command next to the one
    /// the VM started with) and returns at once; the command's output can be
    /// streamed, its input written, and it can be signalled, waited for and
    /// killed, like a [`std::process::Child`]. Waits for the VM to finish
    /// booting first (at most 5 minutes).
    ///
    /// ```no_run
    /// use monocore::vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions};
    /// let root = monocore::rootfs::prepare_template()?;
    /// let vm = MicroVm::from_config(MicroVmConfig::new(root, 256))?;
    /// let mut handle = vm.spawn_with(&SpawnOptions::new().idle(true))?;
    /// let output = handle
    ///     .exec(GuestCommand::new("uname").arg("-r").stdout(GuestOutput::Piped))?
    ///     .wait_with_output()?;
    /// println!("guest kernel: {}", String::from_utf8_lossy(&output.stdout));
    /// handle.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn exec(&mut self, command: super::GuestCommand) -> MonocoreResult<super::GuestProcess> {
        let conn = self.connect(Duration::from_secs(300))?;
        super::exec::start(conn, command)
    }

    /// Asks the guest agent to end the VM (commands still running are
    /// killed), and waits for it to end.
    pub fn shutdown(&mut self) -> MonocoreResult<VmExitStatus> {
        if self.reaped.is_none() {
            let conn = self.connect(Duration::from_secs(300))?;
            super::exec::shutdown(conn)?;
        }
        self.wait()
    }

    /// The helper process's id (the VMM runs in it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the VM to end.
    ///
    /// - `Ok(status)`: the guest exited with `status.code()`, or the VM was
    ///   killed (`status.signal()`).
    /// - `Err(BootFailed)`: the VMM stopped without the guest reporting an
    ///   exit code (it failed to boot, or crashed), with the VMM's last error
    ///   line.
    /// - `Err(Krun | HelperFailed)`: the helper failed before entering the
    ///   VM (a libkrun call failed, the rootfs was unusable, …).
    pub fn wait(&mut self) -> MonocoreResult<VmExitStatus> {
        let status = match self.reaped {
            Some(status) => status,
            None => self.child.wait()?,
        };
        self.finish(status)
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`: `Ok(None)`
    /// means the VM is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> MonocoreResult<Option<VmExitStatus>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.reaped.or(self.child.try_wait()?) {
                return self.finish(status).map(Some);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Kills the VM (SIGKILL to the helper) and reaps it. Killing a VM that
    /// already ended does nothing. A later [`wait`](Self::wait) reports the
    /// signal.
    pub fn kill(&mut self) -> MonocoreResult<()> {
        if self.reaped.is_some() {
            return Ok(());
        }
        if self.child.try_wait()?.is_none() {
            self.killed = true;
            self.child.kill()?;
        }
        let status = self.child.wait()?;
        self.reaped = Some(status);
        self.lifeline = None;
        self.run = None;
        Ok(())
    }

    /// The captured console output so far (empty unless
    /// [`SpawnOptions::capture_console`] was set). After [`wait`](Self::wait)
    /// it is complete (up to 16 MiB).
    pub fn console_output(&self) -> Vec<u8> {
        lock(&self.shared).console.clone()
    }

    /// Whether console output beyond 16 MiB was dropped.
    pub fn console_truncated(&self) -> bool {
        lock(&self.shared).console_truncated
    }

    /// The last lines (up to 64) of the VMM's log and the helper's status.
    pub fn log_tail(&self) -> Vec<String> {
        lock(&self.shared).tail.iter().cloned().collect()
    }

    /// When the handle started the helper.
    pub fn spawned_at(&self) -> SystemTime {
        self.spawned_at
    }

    /// When the helper was about to call `krun_start_enter` (its own clock),
    /// once it has said so.
    pub fn entered_at(&self) -> Option<SystemTime> {
        lock(&self.shared).entered_at
    }

    /// From [`spawned_at`](Self::spawned_at) to
    /// [`entered_at`](Self::entered_at).
    pub fn spawn_to_enter(&self) -> Option<Duration> {
        self.entered_at()
            .and_then(|at| at.duration_since(self.spawned_at).ok())
    }

    fn finish(&mut self, status: ExitStatus) -> MonocoreResult<VmExitStatus> {
        self.reaped = Some(status);
        self.lifeline = None;
        // The helper is gone, so its pipes reach EOF; let the readers finish.
        let _ = self.log_done.recv_timeout(DRAIN_GRACE);
        if let Some(done) = &self.console_done {
            let _ = done.recv_timeout(DRAIN_GRACE);
        }
        // Read once: the run directory goes with the first look.
        let report = self
            .run
            .take()
            .map(|run| agent::read_report(&run.guest_root()));
        let report = match report {
            Some(report) => report,
            // A second wait: the first one classified the exit already.
            None => Ok(Report::Ready),
        };
        classify(status, self.killed, &lock(&self.shared), report)
    }
}

/// Tells a guest exit from a VMM failure, and a command's exit from a guest
/// set-up failure (the agent's `report`). See the `helper` module docs.
fn classify(
    status: ExitStatus,
    killed: bool,
    state: &Shared,
    report: Result<Report, String>,
) -> MonocoreResult<VmExitStatus> {
    if let Some(failure) = &state.failure {
        return Err(failure.clone().into_error());
    }
    let last_line = || {
        state
            .last_vmm_error
            .clone()
            .or_else(|| state.last_kernel_line.clone())
            .or_else(|| state.tail.back().cloned())
            .unwrap_or_else(|| "(the VMM printed nothing)".to_owned())
    };
    if let Some(signal) = status.signal() {
        if killed || signal == libc::SIGKILL || signal == libc::SIGTERM {
            return Ok(VmExitStatus {
                code: None,
                signal: Some(signal),
            });
        }
        return Err(MonocoreError::BootFailed {
            last_error_line: format!(
                "the VMM was killed by signal {signal}; last line: {}",
                last_line()
            ),
            vmm_exit_code: 128 + signal,
        });
    }
    let code = status.code().unwrap_or(-1);
    match state.exit_source {
        Some(ExitSource::Guest(guest)) => match report {
            Ok(Report::Ready) => Ok(VmExitStatus {
                code: Some(guest),
                signal: None,
            }),
            Ok(Report::Failed {
                step,
                errno,
                detail,
            }) => Err(MonocoreError::GuestSetup {
                step,
                errno,
                detail,
            }),
            Err(reason) => Err(MonocoreError::GuestAgentSilent {
                exit_code: guest,
                reason,
            }),
        },
        Some(ExitSource::Vcpu(_)) => Err(MonocoreError::BootFailed {
            last_error_line: last_line(),
            vmm_exit_code: code,
        }),
        None if state.entered_at.is_none() => Err(MonocoreError::HelperFailed {
            message: format!(
                "the helper exited with code {code} before entering the VM; last line: {}",
                last_line()
            ),
        }),
        None => Err(MonocoreError::BootFailed {
            last_error_line: last_line(),
            vmm_exit_code: code,
        }),
    }
}

impl Drop for VmHandle {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            // Reap: no zombie.
            let _ = self.child.wait();
        }
        self.lifeline = None;
        // Only now that the VMM is gone.
        self.run = None;
    }
}

#[cfg(test)]
mod tests;
