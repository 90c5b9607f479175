//! One container: one microVM, from `create` to `delete`.
//!
//! - `create` mounts the snapshot, maps the spec to a validated
//!   [`MicroVm`] (refusals end here, before anything runs) and opens the
//!   output FIFOs;
//! - `start` spawns the VM (the console goes straight to the stdout FIFO)
//!   and returns at once with the helper's pid: the boot happens in the
//!   background, watched by a monitor thread;
//! - the monitor waits for the VM, turns its end into an exit status (the
//!   guest's exit code; 128+N when killed by signal N; [`EXIT_BOOT_FAILED`]
//!   with the error on the stderr FIFO when it never ran the command),
//!   closes the FIFOs and sends the exit event;
//! - `delete` unmounts the snapshot and removes the container's runs
//!   directory (the VM's run directory in it went with the VM).

use std::{
    fs::File,
    io::Write,
    path::PathBuf,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::SystemTime,
};

use containerd_shim::{api::CreateTaskRequest, error, info};
use monocore::{
    kernel::KernelChoice,
    vm::{MicroVm, SpawnOptions, VmHandle},
};

use crate::{
    error::{ShimError, chain},
    events::Events,
    exit::{EXIT_BOOT_FAILED, Exit, exit_status, one_process, wait_until_exited},
    pod::sandbox::PodVm,
    rootfs::{self, MountedRoot},
    runs,
    spec::{self, Role},
    stdio,
};

/// The paths containerd gave for the task's standard streams.
#[derive(Debug, Clone, Default)]
pub struct StdioPaths {
    /// Not connected: the guest console has no input (see the README).
    pub stdin: String,
    /// The guest console (the command's stdout and stderr, merged).
    pub stdout: String,
    /// Only monocore's own error when the VM fails.
    pub stderr: String,
}

/// A created VM, not started yet.
#[derive(Debug)]
struct Prepared {
    vm: MicroVm,
    stdout: File,
    stderr: File,
}

#[derive(Debug)]
enum State {
    Created(Box<Prepared>),
    /// `reaping`: the VM has ended and the monitor is collecting it; its
    /// pid must not be signalled any more.
    Running {
        pid: u32,
        reaping: bool,
    },
    Stopped(Exit),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Running { .. } => "running",
            Self::Stopped(_) => "stopped",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    root: Option<MountedRoot>,
}

/// What `state` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Made, not started.
    Created,
    /// Its VM runs as this pid.
    Running(u32),
    /// Ended.
    Stopped(Exit),
}

/// A container and its microVM.
#[derive(Debug)]
pub struct Container {
    /// The container (and task) id.
    pub id: String,
    /// Its namespace.
    namespace: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where its VM's run directory is made (see `runs`).
    runs: PathBuf,
    /// The stream paths from `create`.
    pub stdio: StdioPaths,
    inner: Mutex<Inner>,
    stopped: Condvar,
    events: Events,
    /// For a pod's sandbox: what the pod's containers share with it.
    pub pod: Option<Arc<PodVm>>,
}

/// The signals a task can be sent: they end the guest command, which the
/// VM does by ending (there is no way to deliver a signal to the guest's
/// main command).
const ENDING_SIGNALS: [i32; 5] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGKILL,
    libc::SIGTERM,
];

impl Container {
    /// `create`: everything but running the VM.
    pub fn create(
        request: &CreateTaskRequest,
        namespace: &str,
        events: Events,
        role: Role,
    ) -> Result<Self, ShimError> {
        if request.terminal {
            return Err(ShimError::Terminal);
        }
        if !request.checkpoint.is_empty() {
            return Err(ShimError::Checkpoint(request.checkpoint.clone()));
        }
        let bundle = PathBuf::from(&request.bundle);
        let runs = runs::dir(namespace, &request.id);
        // A sandbox's snapshot is not used: the pod's VM boots from its
        // share, and runs no process of the sandbox's.
        let root = match role {
            Role::Sandbox => None,
            _ => rootfs::mount(&request.rootfs, &bundle.join("rootfs"))?,
        };
        // Should anything below fail, dropping `root` unmounts it.
        let mapped = spec::read(&bundle, role).map_err(ShimError::Spec)?;
        for (at, reason) in mapped.notes.entries() {
            info!("{}: {at}: accepted, not applied: {reason}", request.id);
        }
        let (vm, pod) = match role {
            Role::Sandbox => {
                let pod = PodVm::create(&runs, &mapped.pod).map_err(ShimError::Share)?;
                let mut config = mapped.vm.get_config().clone();
                config.root_path = pod.share().path().into();
                let vm = MicroVm::from_config(config)
                    .map_err(|e| ShimError::Spec(spec::SpecError::Invalid(e)))?;
                (vm, Some(Arc::new(pod)))
            }
            _ => (mapped.vm, None),
        };
        let prepared = Prepared {
            vm,
            stdout: stdio::open_output("stdout", &request.stdout)?,
            stderr: stdio::open_output("stderr", &request.stderr)?,
        };
        Ok(Self {
            id: request.id.clone(),
            runs,
            namespace: namespace.to_owned(),
            bundle,
            stdio: StdioPaths {
                stdin: request.stdin.clone(),
                stdout: request.stdout.clone(),
                stderr: request.stderr.clone(),
            },
            inner: Mutex::new(Inner {
                state: State::Created(Box::new(prepared)),
                root,
            }),
            stopped: Condvar::new(),
            events,
            pod,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update of `Inner` is a single assignment: a panic elsewhere
        // cannot leave it half-changed.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `start`: spawns the VM and returns its helper's pid at once; the
    /// boot goes on in the background.
    pub fn start(self: &Arc<Self>, kernel: &KernelChoice) -> Result<u32, ShimError> {
        let mut inner = self.lock();
        let prepared = match std::mem::replace(
            &mut inner.state,
            State::Running {
                pid: 0,
                reaping: true,
            },
        ) {
            State::Created(prepared) => prepared,
            other => {
                let state = other.name();
                inner.state = other;
                return Err(ShimError::State {
                    id: self.id.clone(),
                    state,
                    action: "start",
                });
            }
        };
        let Prepared {
            vm,
            stdout,
            mut stderr,
        } = *prepared;
        let spawned = self
            .spawn_options(stdout, kernel)
            .and_then(|options| vm.spawn_with(&options).map_err(ShimError::Spawn));
        // The options held the stdout FIFO's last descriptor but the
        // helper's: they are gone, so the reader sees EOF when the VM ends.
        let handle = match spawned {
            Ok(handle) => handle,
            Err(error) => {
                let _ = writeln!(stderr, "monocore: {}", chain(&error));
                inner.state = State::Stopped(Exit::failed(0));
                self.stopped.notify_all();
                return Err(error);
            }
        };
        let pid = handle.pid();
        if let (Some(pod), Some(id)) = (&self.pod, handle.id()) {
            pod.started(id, pid);
        }
        // Still under the lock: a `kill` sees `Running` only with a monitor
        // that will reap the pid.
        let container = Arc::clone(self);
        let monitor = std::thread::Builder::new()
            .name(format!("monitor-{pid}"))
            .spawn(move || container.monitor(handle, stderr));
        if let Err(e) = monitor {
            // The closure, and the VM handle in it, were dropped: the VM
            // was killed and reaped.
            inner.state = State::Stopped(Exit::failed(pid));
            self.stopped.notify_all();
            return Err(ShimError::Spawn(e.into()));
        }
        inner.state = State::Running {
            pid,
            reaping: false,
        };
        Ok(pid)
    }

    /// How the VM is spawned: its console into the stdout FIFO; a pod's VM
    /// kept and idle (it serves the pod's containers until the sandbox is
    /// stopped, and runs nothing else), its VMM in the pod's network
    /// namespace.
    fn spawn_options(
        &self,
        stdout: File,
        kernel: &KernelChoice,
    ) -> Result<SpawnOptions, ShimError> {
        let is_pod = self.pod.is_some();
        let options = SpawnOptions::new()
            .console_to(stdout)
            .kernel(kernel.clone())
            .runs_dir(&self.runs)
            .keep(is_pod)
            .idle(is_pod);
        match self.pod.as_ref().and_then(|pod| pod.network_namespace()) {
            Some(path) => File::open(path)
                .map(|namespace| options.network_namespace(namespace))
                .map_err(|source| ShimError::NetworkNamespace {
                    path: path.to_path_buf(),
                    source,
                }),
            None => Ok(options),
        }
    }

    /// Waits for the VM to end, records how, and tells containerd.
    fn monitor(&self, mut handle: VmHandle, mut stderr: File) {
        let pid = handle.pid();
        wait_until_exited(pid);
        if let State::Running { reaping, .. } = &mut self.lock().state {
            *reaping = true;
        }
        let status = match handle.wait() {
            Ok(status) => exit_status(status),
            Err(e) => {
                let message = chain(&e);
                error!("{}: the microVM failed: {message}", self.id);
                let _ = writeln!(stderr, "monocore: {message}");
                EXIT_BOOT_FAILED
            }
        };
        // The VM is gone: close the output streams (EOF for their readers).
        drop(handle);
        drop(stderr);
        let exit = Exit {
            pid,
            status,
            at: SystemTime::now(),
        };
        info!(
            "{}: the microVM (pid {pid}) ended with status {status}",
            self.id
        );
        self.lock().state = State::Stopped(exit);
        self.stopped.notify_all();
        self.events.exited(&self.id, exit);
    }

    /// `kill`: any of [`ENDING_SIGNALS`] ends the VM at once (SIGKILL to
    /// its helper; the status is then 137); signal 0 only checks that the
    /// task has not finished.
    pub fn kill(&self, signal: u32) -> Result<(), ShimError> {
        let signo = i32::try_from(signal).map_err(|_| ShimError::Signal(signal))?;
        if signo != 0 && !ENDING_SIGNALS.contains(&signo) {
            return Err(ShimError::Signal(signal));
        }
        let mut inner = self.lock();
        match &inner.state {
            State::Stopped(_) => Err(ShimError::Finished(self.id.clone())),
            _ if signo == 0 => Ok(()),
            State::Running { pid, reaping } => {
                // `pid` is our child, not reaped yet (`reaping` is set, under
                // this lock, before the monitor reaps it), so the pid cannot
                // have been reused.
                if !*reaping {
                    let Some(helper) = one_process(*pid) else {
                        error!("{}: no process to signal (pid {pid})", self.id);
                        return Err(ShimError::NoProcess(self.id.clone()));
                    };
                    if let Err(e) =
                        rustix::process::kill_process(helper, rustix::process::Signal::KILL)
                    {
                        error!("{}: cannot kill the microVM (pid {pid}): {e}", self.id);
                    }
                }
                Ok(())
            }
            State::Created(_) => {
                let exit = Exit {
                    pid: 0,
                    status: 128 + 9,
                    at: SystemTime::now(),
                };
                inner.state = State::Stopped(exit);
                drop(inner);
                self.stopped.notify_all();
                self.events.exited(&self.id, exit);
                Ok(())
            }
        }
    }

    /// `wait`: blocks until the task has ended.
    pub fn wait(&self) -> Exit {
        let mut inner = self.lock();
        loop {
            if let State::Stopped(exit) = inner.state {
                return exit;
            }
            inner = self
                .stopped
                .wait(inner)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Where the task is.
    pub fn status(&self) -> Status {
        match &self.lock().state {
            State::Created(_) => Status::Created,
            State::Running { pid, .. } => Status::Running(*pid),
            State::Stopped(exit) => Status::Stopped(*exit),
        }
    }

    /// `delete`: a task that is not running gives up its root file system.
    /// Returns how it ended (a task never started: pid 0, status 0).
    pub fn delete(&self) -> Result<Exit, ShimError> {
        let mut inner = self.lock();
        let exit = match &inner.state {
            State::Running { .. } => {
                return Err(ShimError::State {
                    id: self.id.clone(),
                    state: "running",
                    action: "delete it (kill it first)",
                });
            }
            State::Created(_) => Exit {
                pid: 0,
                status: 0,
                at: SystemTime::now(),
            },
            State::Stopped(exit) => *exit,
        };
        // A created VM's FIFOs close here; a `wait` on it returns.
        inner.state = State::Stopped(exit);
        self.stopped.notify_all();
        if let Some(root) = inner.root.take() {
            root.unmount()?;
        }
        // The pod's containers' mounts come off before the directory that
        // holds them goes.
        if let Some(pod) = &self.pod {
            pod.share().remove().map_err(ShimError::Share)?;
        }
        runs::remove(&self.namespace, &self.id).map_err(|source| ShimError::RunsDir {
            dir: self.runs.clone(),
            source,
        })?;
        Ok(exit)
    }
}
