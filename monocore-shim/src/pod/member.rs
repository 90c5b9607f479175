//! A container of a pod: no VM of its own. Its snapshot and bind mounts
//! are placed in the pod's share (see [`super::share`]) and the pod VM's
//! agent runs its process in a mount namespace of its own, with that root.
//!
//! - `create` mounts the snapshot at the bundle's `rootfs`, maps the spec
//!   ([`Role::PodContainer`]), opens the output FIFOs, places the root and
//!   binds in the share, and has the agent build the container (its mount
//!   namespace, root, `/proc`, `/dev` and binds) and keep it: as with
//!   runc, `create` sets the container up and `start` only runs its
//!   process;
//! - `start` runs the process in that container through the agent; its
//!   pid, for containerd, is the pod VM's helper's;
//! - `kill` signals the process in the guest (any signal: the pod and its
//!   other containers go on);
//! - `delete` has the agent forget the container, takes its mounts off the
//!   share and unmounts the snapshot.

use std::{
    collections::HashMap,
    ffi::OsStr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use containerd_shim::api::{CreateTaskRequest, ExecProcessRequest};
use monocore::{
    rootfs::{MountPoint, make_mount_point},
    vm::{GuestCommand, GuestContainer, GuestOutput, MicroVmConfig},
};

use super::{
    exec::Exec,
    lifecycle::{Lifecycle, Stage},
    process::{Outputs, PodProcess},
    sandbox::PodVm,
};
use crate::{
    container::{Status, StdioPaths},
    error::{ShimError, chain},
    events::Events,
    exit::Exit,
    rootfs::{self, MountedRoot},
    spec::{self, HostBind, PodParts, Role, User},
    stdio,
};

/// What `start` needs.
#[derive(Debug)]
struct Ready {
    config: Box<MicroVmConfig>,
    outputs: Outputs,
}

/// A pod's container.
#[derive(Debug)]
pub struct Member {
    /// The container id.
    pub id: String,
    /// Its bundle.
    pub bundle: PathBuf,
    /// Its stream paths.
    pub stdio: StdioPaths,
    pod: Arc<PodVm>,
    parts: PodParts,
    root: Mutex<Option<MountedRoot>>,
    lifecycle: Lifecycle<Ready>,
    execs: Mutex<HashMap<String, Arc<Exec>>>,
    events: Events,
}

/// The command of `config` (a spec's process), as `user`, with a terminal
/// of `tty` (rows, columns) if asked; where it runs is the caller's to say.
pub fn guest_command(config: &MicroVmConfig, user: &User, tty: Option<(u16, u16)>) -> GuestCommand {
    let exec = config.exec_path.as_ref().map_or("/bin/sh", |p| p.as_str());
    let mut command = GuestCommand::new(exec)
        .args(config.args.iter())
        .user(user.uid, user.gid, user.groups.clone())
        .stdout(GuestOutput::Piped)
        .stderr(GuestOutput::Piped);
    if let Some((rows, cols)) = tty {
        command = command.tty(rows, cols);
    }
    for pair in &config.env {
        command = command.env(pair.get_name(), pair.get_value());
    }
    if let Some(dir) = &config.workdir_path {
        command = command.current_dir(dir.as_str());
    }
    for limit in &config.rlimits {
        command = command.rlimit(*limit.get_resource(), *limit.get_soft(), *limit.get_hard());
    }
    command
}

/// Makes the mount points the agent will need in the container's root,
/// on the host, before the root is shared: the agent makes what is
/// missing too, but in the guest each file system step is a round trip to
/// the host's file server under an emulating hypervisor, hundreds of
/// milliseconds for a kubelet container's mounts. Every step is resolved
/// inside the root ([`make_mount_point`]). `/proc`, `/sys` and `/dev` are
/// the guest's own file systems (what kubelet binds below them, the
/// termination log, is placed by the agent). A failure here only leaves
/// the work to the agent, which reports it.
fn make_mount_points(id: &str, root: &Path, binds: &[HostBind]) {
    let guest_own = |target: &str| {
        ["/proc", "/sys", "/dev"]
            .iter()
            .any(|top| Path::new(target).starts_with(top))
    };
    let points = ["/proc", "/sys", "/dev"]
        .into_iter()
        .map(|dir| (dir, MountPoint::Dir))
        .chain(
            binds
                .iter()
                .filter(|bind| !guest_own(&bind.destination))
                .map(|bind| {
                    let kind = if bind.source.is_dir() {
                        MountPoint::Dir
                    } else {
                        MountPoint::File
                    };
                    (bind.destination.as_str(), kind)
                }),
        );
    for (target, kind) in points {
        if let Err(e) = make_mount_point(root, target.as_ref(), kind) {
            containerd_shim::warn!("{id}: {} (left to the agent)", chain(&e));
        }
    }
}

impl Member {
    /// The pod's VM.
    pub fn pod_vm(&self) -> &PodVm {
        &self.pod
    }

    /// `exec`: adds exec process `request.exec_id`.
    pub fn add_exec(&self, request: &ExecProcessRequest) -> Result<(), ShimError> {
        if !matches!(self.status(), Status::Running(_)) {
            return Err(ShimError::State {
                id: self.id.clone(),
                state: "not running",
                action: "exec in it",
            });
        }
        let mut execs = self.execs();
        if execs.contains_key(&request.exec_id) {
            return Err(ShimError::Exists(request.exec_id.clone()));
        }
        let exec = Exec::create(request, self, self.events.clone())?;
        execs.insert(request.exec_id.clone(), Arc::new(exec));
        Ok(())
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Exec>>> {
        self.execs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Exec process `exec_id`.
    pub fn exec(&self, exec_id: &str) -> Result<Arc<Exec>, ShimError> {
        self.execs()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(exec_id.to_owned()))
    }

    /// Forgets exec process `exec_id`, which must have ended.
    pub fn remove_exec(&self, exec_id: &str) -> Result<Exit, ShimError> {
        let exec = self.exec(exec_id)?;
        let exit = match exec.status() {
            Status::Running(_) => {
                return Err(ShimError::State {
                    id: exec_id.to_owned(),
                    state: "running",
                    action: "delete it (kill it first)",
                });
            }
            Status::Created => Exit::never(),
            Status::Stopped(exit) => exit,
        };
        self.execs().remove(exec_id);
        Ok(exit)
    }

    /// `create`, in pod `pod`.
    pub fn create(
        request: &CreateTaskRequest,
        pod: Arc<PodVm>,
        events: Events,
    ) -> Result<Self, ShimError> {
        if request.terminal {
            return Err(ShimError::Terminal);
        }
        let bundle = PathBuf::from(&request.bundle);
        let root = rootfs::mount(&request.rootfs, &bundle.join("rootfs"))?;
        let mapped = spec::read(&bundle, Role::PodContainer).map_err(ShimError::Spec)?;
        for (at, reason) in mapped.notes.entries() {
            containerd_shim::info!("{}: {at}: accepted, not applied: {reason}", request.id);
        }
        make_mount_points(&request.id, &bundle.join("rootfs"), &mapped.pod.binds);
        let outputs = Outputs {
            stdout: Some(stdio::open_output("stdout", &request.stdout)?),
            stderr: Some(stdio::open_output("stderr", &request.stderr)?),
        };
        let member = Self {
            id: request.id.clone(),
            bundle,
            stdio: StdioPaths {
                stdin: request.stdin.clone(),
                stdout: request.stdout.clone(),
                stderr: request.stderr.clone(),
            },
            pod,
            parts: mapped.pod,
            root: Mutex::new(root),
            lifecycle: Lifecycle::new(Ready {
                config: Box::new(mapped.vm.get_config().clone()),
                outputs,
            }),
            execs: Mutex::new(HashMap::new()),
            events,
        };
        let prepared = member.guest_container().and_then(|container| {
            member
                .pod
                .prepare_container(&container)
                .map_err(ShimError::GuestPrepare)
        });
        if let Err(e) = prepared {
            // Nothing of it stays: not its share mounts, not its snapshot.
            if let Err(release) = member.release_mounts() {
                containerd_shim::warn!("{}: {}", member.id, chain(&release));
            }
            return Err(e);
        }
        Ok(member)
    }

    /// The container as the agent sets it up: its root and binds, placed
    /// in the pod's share.
    fn guest_container(&self) -> Result<GuestContainer, ShimError> {
        let share = self.pod.share();
        let slot = OsStr::new(&self.id);
        let root = share
            .attach(
                slot,
                "root".as_ref(),
                &self.bundle.join("rootfs"),
                self.parts.readonly_root,
            )
            .map_err(ShimError::Share)?;
        let mut container =
            GuestContainer::new(&self.id, root).readonly_root(self.parts.readonly_root);
        if let Some(hostname) = self.pod.hostname() {
            container = container.hostname(hostname);
        }
        for (i, bind) in self.parts.binds.iter().enumerate() {
            let name = format!("m{i}");
            let source = share
                .attach(slot, name.as_ref(), &bind.source, bind.readonly)
                .map_err(ShimError::Share)?;
            container = container.bind(source, &bind.destination, bind.readonly);
        }
        Ok(container)
    }

    /// `start`: starts its process in the container `create` set up;
    /// returns the pid containerd knows it by.
    pub fn start(self: &Arc<Self>) -> Result<u32, ShimError> {
        let mut stage = self.lifecycle.lock();
        let Some(Ready { config, outputs }) = Lifecycle::take_ready(&mut stage) else {
            let state = match &*stage {
                Stage::Running(_) => "running",
                _ => "stopped",
            };
            return Err(ShimError::State {
                id: self.id.clone(),
                state,
                action: "start",
            });
        };
        let command = guest_command(&config, &self.parts.user, None).in_container(&self.id);
        let started = self.pod.exec(command).map_err(ShimError::GuestStart);
        let member = Arc::clone(self);
        let watched = started.and_then(|process| {
            PodProcess::watch(
                self.id.clone(),
                self.pod.pid(),
                process,
                outputs,
                move |exit| {
                    let mut stage = member.lifecycle.lock();
                    member.lifecycle.set(&mut stage, Stage::Stopped(exit));
                    drop(stage);
                    member.events.exited(&member.id, exit);
                },
            )
            .map_err(ShimError::Thread)
        });
        let next = match &watched {
            Ok(process) => Stage::Running(Arc::clone(process)),
            Err(_) => Stage::Stopped(Exit::failed(self.pod.pid())),
        };
        self.lifecycle.set(&mut stage, next);
        watched.map(|process| process.pid())
    }

    /// Where it is.
    pub fn status(&self) -> Status {
        self.lifecycle.status()
    }

    /// `wait`: blocks until it has started and ended.
    pub fn wait(&self) -> Exit {
        self.lifecycle.wait()
    }

    /// `kill`: the signal goes to the process in the guest.
    pub fn kill(&self, signal: u32) -> Result<(), ShimError> {
        let signo = i32::try_from(signal).map_err(|_| ShimError::Signal(signal))?;
        let mut stage = self.lifecycle.lock();
        match &*stage {
            Stage::Running(process) => process.signal(signo).map_err(ShimError::Spawn),
            Stage::Stopped(_) => Err(ShimError::Finished(self.id.clone())),
            Stage::Created(_) => {
                let exit = Exit {
                    pid: 0,
                    status: 128 + 9,
                    at: SystemTime::now(),
                };
                self.lifecycle.set(&mut stage, Stage::Stopped(exit));
                drop(stage);
                self.events.exited(&self.id, exit);
                Ok(())
            }
        }
    }

    /// `delete`: takes its mounts off the pod's share and unmounts its
    /// snapshot.
    pub fn delete(&self) -> Result<Exit, ShimError> {
        let exit = match self.status() {
            Status::Running(_) => {
                return Err(ShimError::State {
                    id: self.id.clone(),
                    state: "running",
                    action: "delete it (kill it first)",
                });
            }
            Status::Created => Exit::never(),
            Status::Stopped(exit) => exit,
        };
        let mut stage = self.lifecycle.lock();
        self.lifecycle.set(&mut stage, Stage::Stopped(exit));
        drop(stage);
        // A VM that has ended took the container with it.
        if let Err(e) = self.pod.discard_container(&self.id) {
            containerd_shim::debug!("{}: the agent did not discard it: {}", self.id, chain(&e));
        }
        self.release_mounts()?;
        Ok(exit)
    }

    /// Takes its mounts off the pod's share and unmounts its snapshot.
    fn release_mounts(&self) -> Result<(), ShimError> {
        self.pod
            .share()
            .detach(OsStr::new(&self.id))
            .map_err(ShimError::Share)?;
        let root = self
            .root
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(root) = root {
            root.unmount()?;
        }
        Ok(())
    }
}
