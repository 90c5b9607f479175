//! [`VmHandle`]: a VM running in a child process.

use std::{
    ffi::{OsStr, OsString},
    io::Write,
    path::PathBuf,
    process::{Child, ChildStdin, ExitStatus},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use monocore_agent::report::Report;

use super::{
    GuestCommand, GuestContainer, GuestFiles, GuestProcess, control,
    exit::{VmExitStatus, classify},
    guest_files,
    monitor::{Watch, lock},
};
use crate::{
    config::MicroVmConfig,
    error::{ControlError, MonocoreResult},
    state::{Meta, RunDir},
};

/// How long to wait for the helper's pipes to drain once it has exited.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

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
    watch: Watch,
    spawned_at: SystemTime,
    killed: bool,
    reaped: Option<ExitStatus>,
    // The VM's private root; removed once the VM has ended.
    run: Option<RunDir>,
}

impl VmHandle {
    /// The handle of the helper `child`, watched by `watch`, in `run`.
    pub(crate) fn new(child: Child, watch: Watch, spawned_at: SystemTime, run: RunDir) -> Self {
        let mut child = child;
        Self {
            lifeline: child.stdin.take(),
            child,
            watch,
            spawned_at,
            killed: false,
            reaped: None,
            run: Some(run),
        }
    }

    /// Sends the helper its request (`<len>\n<json>`); the pipe then stays
    /// open as the helper's lifeline. A helper that died early (a broken
    /// pipe) is not an error here: `wait` reports why it died.
    pub(crate) fn send_request(&mut self, framed: &[u8]) -> MonocoreResult<()> {
        let Some(stdin) = self.lifeline.as_mut() else {
            return Ok(());
        };
        match stdin.write_all(framed).and_then(|()| stdin.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The VM's ID: the name of its run directory without `run-` (what
    /// [`RunningVm`](super::RunningVm) and `monocore ps` show).
    pub fn id(&self) -> Option<String> {
        self.run.as_ref()?.paths().id().map(str::to_owned)
    }

    /// Records the VM for [`RunningVm`](super::RunningVm).
    pub(crate) fn record(&self, config: &MicroVmConfig) -> MonocoreResult<()> {
        let Some(run) = &self.run else { return Ok(()) };
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
        run.paths().write_meta(&Meta {
            pid: self.child.id(),
            command,
            started,
        })
    }

    /// The Unix socket of the guest agent's control channel.
    fn control_socket(&self) -> MonocoreResult<PathBuf> {
        let run = self.run.as_ref().ok_or(ControlError::VmEnded)?;
        Ok(run.paths().control_socket()?)
    }

    /// Connects to the guest agent, waiting while the VM boots (at most
    /// `timeout`, and no longer than the VM runs; once it has booted, an
    /// agent that does not answer within [`control::bounds::ANSWER`] is
    /// `Unresponsive`). Returns the connection and the socket.
    pub(crate) fn connect(
        &mut self,
        timeout: Duration,
    ) -> MonocoreResult<(std::os::unix::net::UnixStream, PathBuf)> {
        let socket = self.control_socket()?;
        let child = &mut self.child;
        let run = self.run.as_ref().ok_or(ControlError::VmEnded)?;
        let conn = control::connect(
            &socket,
            Instant::now() + timeout,
            &mut || matches!(child.try_wait(), Ok(None)),
            &mut || guest_files::agent_ready(run.paths()),
            control::bounds::ANSWER,
        )?;
        Ok((conn, socket))
    }

    /// Waits until the VM has booted and its guest agent answers (at most
    /// `timeout`): after this, [`exec`](Self::exec) starts its command
    /// without waiting for a boot. A VM that ends first is
    /// [`ControlError::EndedBeforeAnswer`].
    pub fn wait_ready(&mut self, timeout: Duration) -> MonocoreResult<()> {
        self.wait_ready_while(timeout, &|| true)
    }

    /// [`wait_ready`](Self::wait_ready), which also gives up (as if the VM
    /// had ended) as soon as `keep_waiting` says no.
    pub(crate) fn wait_ready_while(
        &mut self,
        timeout: Duration,
        keep_waiting: &dyn Fn() -> bool,
    ) -> MonocoreResult<()> {
        let socket = self.control_socket()?;
        let child = &mut self.child;
        let run = self.run.as_ref().ok_or(ControlError::VmEnded)?;
        let conn = control::connect(
            &socket,
            Instant::now() + timeout,
            &mut || keep_waiting() && matches!(child.try_wait(), Ok(None)),
            &mut || guest_files::agent_ready(run.paths()),
            control::bounds::ANSWER,
        )?;
        drop(conn);
        Ok(())
    }

    /// Runs `command` in the running VM (a second command next to the one
    /// the VM started with) and returns at once; the command's output can be
    /// streamed, its input written, and it can be signalled, waited for and
    /// killed, like a [`std::process::Child`]. Waits for the VM to finish
    /// booting first (at most 5 minutes); a VM that has booted but does not
    /// answer (frozen, stopped) is
    /// [`ControlError::Unresponsive`](crate::error::ControlError::Unresponsive)
    /// within 15 s.
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
    pub fn exec(&mut self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        let (conn, socket) = self.connect(Duration::from_secs(300))?;
        control::start(conn, command, &socket)
    }

    /// Builds `container` in the running VM ahead of its commands, and
    /// keeps it, with no process, until
    /// [`discard_container`](Self::discard_container): its commands then
    /// run in it with [`GuestCommand::in_container`] and start without the
    /// cost of building it (the OCI model: `create` sets a container up,
    /// `start` only runs its process). A name in use, or a bind or root
    /// the agent cannot mount, is a
    /// [`GuestSetup`](crate::MonocoreError::GuestSetup) error.
    ///
    /// ```no_run
    /// use monocore::vm::{GuestCommand, GuestContainer, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions};
    /// let root = monocore::rootfs::prepare_template()?;
    /// let vm = MicroVm::from_config(MicroVmConfig::new(root, 256))?;
    /// let mut handle = vm.spawn_with(&SpawnOptions::new().idle(true))?;
    /// // A container whose root is the VM's own tree, read-only.
    /// handle.prepare_container(&GuestContainer::new("web", "/").readonly_root(true))?;
    /// let output = handle
    ///     .exec(GuestCommand::new("ls").in_container("web").stdout(GuestOutput::Piped))?
    ///     .wait_with_output()?;
    /// println!("{}", String::from_utf8_lossy(&output.stdout));
    /// handle.discard_container("web")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`GuestCommand::in_container`]: crate::vm::GuestCommand::in_container
    pub fn prepare_container(&mut self, container: &GuestContainer) -> MonocoreResult<()> {
        let (conn, _) = self.connect(Duration::from_secs(300))?;
        control::prepare(conn, container)
    }

    /// Forgets the container `name` that
    /// [`prepare_container`](Self::prepare_container) made: its name is
    /// free again, and its mounts go once no process is left in it (its
    /// processes go on). A container that a command created with
    /// [`GuestCommand::in_new_container`] lives as long as that command,
    /// and is not discarded.
    ///
    /// [`GuestCommand::in_new_container`]: crate::vm::GuestCommand::in_new_container
    pub fn discard_container(&mut self, name: impl AsRef<OsStr>) -> MonocoreResult<()> {
        let (conn, _) = self.connect(Duration::from_secs(300))?;
        control::discard(conn, name.as_ref())
    }

    /// The files of the running VM: written, read and copied in and out
    /// through the guest agent (see [`GuestFiles`]). Waits for the VM to
    /// finish booting first (within the calls' timeout).
    ///
    /// ```no_run
    /// # fn demo(vm: &mut monocore::vm::VmHandle) -> monocore::MonocoreResult<()> {
    /// vm.files().write_file("/etc/motd", "hello\n", 0o644)?;
    /// let hosts = vm.files().read_file("/etc/hosts")?;
    /// # Ok(()) }
    /// ```
    pub fn files(&mut self) -> GuestFiles<'_> {
        GuestFiles::of_handle(self, None)
    }

    /// The files of the running container `container` of this VM, as its
    /// processes see them (its root, its binds), like
    /// [`GuestCommand::in_container`]. An unknown container is a
    /// [`GuestFileError::Guest`](crate::error::GuestFileError::Guest) error
    /// at [`GuestStep::Container`](crate::vm::GuestStep::Container).
    ///
    /// [`GuestCommand::in_container`]: crate::vm::GuestCommand::in_container
    pub fn files_in(&mut self, container: impl Into<OsString>) -> GuestFiles<'_> {
        GuestFiles::of_handle(self, Some(container.into()))
    }

    /// Asks the guest agent to end the VM (commands still running are
    /// killed), and waits for it to end.
    pub fn shutdown(&mut self) -> MonocoreResult<VmExitStatus> {
        if self.reaped.is_none() {
            let (conn, _) = self.connect(Duration::from_secs(300))?;
            control::shutdown(conn)?;
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
    /// - `Err(Krun | Helper)`: the helper failed before entering the
    ///   VM (a libkrun call failed, the rootfs was unusable, …).
    /// - `Err(VmExpired)`: the helper ended the VM at its
    ///   [`time_to_live`](super::SpawnOptions::time_to_live).
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
        lock(&self.watch.shared).console.clone()
    }

    /// Whether console output beyond 16 MiB was dropped.
    pub fn console_truncated(&self) -> bool {
        lock(&self.watch.shared).console_truncated
    }

    /// The last lines (up to 64) of the VMM's log and the helper's status.
    pub fn log_tail(&self) -> Vec<String> {
        lock(&self.watch.shared).tail.iter().cloned().collect()
    }

    /// When the handle started the helper.
    pub fn spawned_at(&self) -> SystemTime {
        self.spawned_at
    }

    /// When the helper was about to call `krun_start_enter` (its own clock),
    /// once it has said so.
    pub fn entered_at(&self) -> Option<SystemTime> {
        lock(&self.watch.shared).entered_at
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
        let _ = self.watch.log_done.recv_timeout(DRAIN_GRACE);
        if let Some(done) = &self.watch.console_done {
            let _ = done.recv_timeout(DRAIN_GRACE);
        }
        // Read once: the run directory goes with the first look.
        let report = self
            .run
            .take()
            .map(|run| guest_files::read_report(run.paths()));
        let report = match report {
            Some(report) => report,
            // A second wait: the first one classified the exit already.
            None => Ok(Report::Ready),
        };
        classify(status, self.killed, &lock(&self.watch.shared), report)
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
