//! [`Sandbox`]: a VM claimed from a pool, with the claim's root and
//! defaults, destroyed when dropped.

use std::{
    ffi::OsString,
    fs,
    os::fd::OwnedFd,
    path::Path,
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use monocore_agent::control::Place;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::warm::WarmVm;
use crate::{
    error::{MonocoreResult, rootfs::io_at},
    rootfs::copy_tree,
    vm::{
        GuestCommand, GuestContainer, GuestFiles, GuestOutput, GuestOutputs, GuestProcess,
        MicroVmConfig, VmExitStatus,
    },
};

/// Where a claim's own root goes in the pool VM's root (the VM's share),
/// as the guest sees it: `/` + this name.
const CLAIM_ROOT: &str = ".monocore-sandbox";
/// The container a claim with its own root runs its commands in.
const CONTAINER: &str = "sandbox";

/// A VM claimed from a [`Pool`](super::Pool): its commands run with no
/// boot. Dropping it kills the VM and removes everything of it (its run
/// directory, its root); it is never given to anyone else.
///
/// Its commands get the claim's defaults: [`exec`](Self::exec) adds the
/// claim's `env` entries the command does not set, its `workdir` if the
/// command names none, and its `rlimits` for resources the command does
/// not limit, and runs the command in the claim's root.
#[derive(Debug)]
pub struct Sandbox {
    // Field order is drop order: the watchdog stops before the VM is
    // reaped (so its pidfd never outlives the process it names), the VM
    // ends before its root is removed.
    watchdog: Option<Watchdog>,
    warm: WarmVm,
    container: Option<OsString>,
    defaults: MicroVmConfig,
    was_warm: bool,
}

impl Sandbox {
    /// Gives `warm` the claim `config`: a root other than the pool's own
    /// `template` is copied into the VM's share and prepared as the
    /// container the sandbox's commands run in.
    pub(super) fn start(
        mut warm: WarmVm,
        was_warm: bool,
        config: &MicroVmConfig,
        template: &Path,
    ) -> MonocoreResult<Self> {
        let container = if same_dir(&config.root_path, template) {
            None
        } else {
            let dest = warm.root.path().join(CLAIM_ROOT);
            fs::create_dir(&dest).map_err(io_at(&dest))?;
            copy_tree(&config.root_path, &dest)?;
            warm.vm
                .prepare_container(&GuestContainer::new(CONTAINER, format!("/{CLAIM_ROOT}")))?;
            Some(OsString::from(CONTAINER))
        };
        Ok(Self {
            watchdog: None,
            warm,
            container,
            defaults: config.clone(),
            was_warm,
        })
    }

    /// The VM's ID (as `monocore ps` shows it).
    pub fn id(&self) -> Option<String> {
        self.warm.vm.id()
    }

    /// The VM helper's process id (the VMM runs in it).
    pub fn pid(&self) -> u32 {
        self.warm.vm.pid()
    }

    /// Whether the VM came booted from the pool (`false`: the pool was
    /// empty and the claim booted it, [`WhenEmpty::ColdBoot`](super::WhenEmpty::ColdBoot)).
    pub fn was_warm(&self) -> bool {
        self.was_warm
    }

    /// How long the VM had been idle and ready when it was claimed.
    pub fn ready_since(&self) -> Instant {
        self.warm.ready_at
    }

    /// The container the sandbox's commands run in, if the claim brought a
    /// root of its own (`None`: they run in the VM's root).
    pub fn container(&self) -> Option<&OsString> {
        self.container.as_ref()
    }

    /// The claim's `exec` and `args` as a command, if it named one (an
    /// image's entrypoint, for example).
    pub fn default_command(&self) -> Option<GuestCommand> {
        let exec = self.defaults.exec_path.as_ref()?;
        Some(GuestCommand::new(exec.as_str()).args(self.defaults.args.iter()))
    }

    /// Runs `command` in the sandbox with the claim's defaults (see the
    /// type's docs) and returns at once, as
    /// [`VmHandle::exec`](crate::vm::VmHandle::exec) does. The sandbox
    /// chooses where it runs: a place the command names is replaced.
    pub fn exec(&mut self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        let command = self.with_defaults(command);
        self.warm.vm.exec(command)
    }

    /// The sandbox's files, as its commands see them (in its container, if
    /// the claim brought a root of its own): read, written and copied
    /// through the agent's control channel, every path resolved inside the
    /// sandbox's root (see [`GuestFiles`]).
    pub fn files(&mut self) -> GuestFiles<'_> {
        match &self.container {
            Some(name) => self.warm.vm.files_in(name.clone()),
            None => self.warm.vm.files(),
        }
    }

    /// Runs `command` to its end with its stdout and stderr collected.
    pub fn run(&mut self, command: GuestCommand) -> MonocoreResult<GuestOutputs> {
        self.exec(
            command
                .stdout(GuestOutput::Piped)
                .stderr(GuestOutput::Piped),
        )?
        .wait_with_output()
    }

    /// Ends the sandbox's VM if it is still running after `ttl` from now
    /// (replacing an earlier time to live). The VM is killed from this
    /// process, whatever its commands are doing; the sandbox's commands
    /// then fail as they do when a VM ends.
    pub fn set_time_to_live(&mut self, ttl: Duration) -> MonocoreResult<()> {
        self.watchdog = None;
        self.watchdog = Some(Watchdog::start(self.warm.vm.pid(), ttl)?);
        Ok(())
    }

    /// Kills the VM now and waits for it (dropping the sandbox does the
    /// same).
    pub fn kill(&mut self) -> MonocoreResult<()> {
        self.watchdog = None;
        self.warm.vm.kill()
    }

    /// Waits, at most `timeout`, for the VM to end on its own (its time to
    /// live, a `poweroff` in the guest): `Ok(None)` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> MonocoreResult<Option<VmExitStatus>> {
        self.warm.vm.wait_timeout(timeout)
    }

    fn with_defaults(&self, mut command: GuestCommand) -> GuestCommand {
        let request = &mut command.request;
        request.place = match &self.container {
            Some(name) => Place::Join(name.as_encoded_bytes().to_vec()),
            None => Place::Vm,
        };
        let set = |entry: &[u8]| entry.split(|b| *b == b'=').next().map(<[u8]>::to_vec);
        let named: Vec<Vec<u8>> = request.env.iter().filter_map(|e| set(e)).collect();
        let mut env: Vec<Vec<u8>> = self
            .defaults
            .env
            .iter()
            .filter(|pair| !named.contains(&pair.get_name().as_bytes().to_vec()))
            .map(|pair| format!("{}={}", pair.get_name(), pair.get_value()).into_bytes())
            .collect();
        env.append(&mut request.env);
        request.env = env;
        if request.workdir.is_empty()
            && let Some(workdir) = &self.defaults.workdir_path
        {
            request.workdir = workdir.as_str().as_bytes().to_vec();
        }
        for limit in &self.defaults.rlimits {
            let resource = limit.get_resource().as_int();
            if !request.rlimits.iter().any(|l| l.resource == resource) {
                request.rlimits.push(monocore_agent::spec::Rlimit {
                    resource,
                    soft: *limit.get_soft(),
                    hard: *limit.get_hard(),
                });
            }
        }
        command
    }
}

/// Whether `a` and `b` name the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A thread that kills a VM's helper when its time to live passes, by a
/// pidfd (so a pid reused after the VM was reaped is never hit); stopped
/// when dropped.
#[derive(Debug)]
struct Watchdog {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn start(pid: u32, ttl: Duration) -> MonocoreResult<Self> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let pidfd: OwnedFd = pidfd_open(pid, PidfdFlags::empty())?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("monocore-sandbox-ttl".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(ttl) {
                    let _ = pidfd_send_signal(&pidfd, Signal::KILL);
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
