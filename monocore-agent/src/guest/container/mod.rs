//! Containers inside the VM: commands of the control channel that run in a
//! mount namespace and root of their own (a pod's app containers).
//!
//! A container is built by the session thread that serves its first
//! command ([`mounts`]): the thread leaves the agent's namespace for a new
//! one, sets it up, and forks the command from there, so the command starts
//! inside. The agent remembers the container by name (its namespace and
//! root, as fds the thread opened itself) until that first command ends; a
//! later command may join it by name. Containers share the VM's pid, UTS
//! and network namespaces, its kernel and its users: they are apart in
//! what they see of the file system, not a security boundary between each
//! other (the VM is the boundary).

mod mounts;
mod resolve;
mod sys;

use std::{
    collections::HashMap,
    ffi::{CStr, CString},
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    sync::{Arc, Mutex, PoisonError},
};

use monocore_agent::{
    control::ContainerSetup,
    report::{Step, escape},
};

use super::{
    setup::{Failure, fail},
    sys::{MS_NODEV, MS_NOSUID, mount_fs},
};

/// The tmpfs every container gets as `/dev/shm`: mounted once, in the
/// agent's namespace, on a directory of the VM's own `/dev` (a devtmpfs,
/// not the root share), which no container's tree holds.
const POD_SHM: &CStr = c"/dev/.monocore-pod-shm";

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// A running container.
struct Container {
    ns: OwnedFd,
    root: OwnedFd,
}

enum Slot {
    /// Its first command's session is building it.
    Starting,
    Running(Container),
}

type Table = Arc<Mutex<HashMap<Vec<u8>, Slot>>>;

/// The VM's containers, by name.
pub(crate) struct Containers {
    table: Table,
    /// Where the pod's `/dev/shm` is mounted ([`POD_SHM`]).
    pod_shm: CString,
    /// Whether it is mounted.
    pod_shm_mounted: Mutex<bool>,
}

impl Default for Containers {
    fn default() -> Self {
        Self::with_pod_shm(POD_SHM)
    }
}

/// A container a session created: the agent forgets it when this is
/// dropped (when its first command has ended, or could not start), and its
/// name is free again.
pub(crate) struct Created {
    table: Table,
    name: Vec<u8>,
}

impl Drop for Created {
    fn drop(&mut self) {
        // Only this session can have put the name there, and only it
        // removes it.
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

fn named(what: &str, name: &[u8]) -> Vec<u8> {
    format!("{what} {}", escape(name, 200)).into_bytes()
}

impl Containers {
    /// No containers; the pod's `/dev/shm` will be mounted at `pod_shm`.
    pub(crate) fn with_pod_shm(pod_shm: &CStr) -> Self {
        Self {
            table: Table::default(),
            pod_shm: pod_shm.to_owned(),
            pod_shm_mounted: Mutex::new(false),
        }
    }

    /// Builds the container `setup` and moves the calling thread into it,
    /// so that what it forks next starts inside. A name in use is
    /// `EEXIST`.
    pub(crate) fn create(&self, setup: &ContainerSetup) -> Result<Created, Failure> {
        {
            let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            if table.contains_key(&setup.name) {
                return Err(fail(Step::Container, &named("name in use:", &setup.name))(
                    EEXIST,
                ));
            }
            table.insert(setup.name.clone(), Slot::Starting);
        }
        let created = Created {
            table: Arc::clone(&self.table),
            name: setup.name.clone(),
        };
        // Before the thread leaves the agent's namespace, where it lives.
        self.mount_pod_shm()?;
        let entered = mounts::enter_new(setup, &self.pod_shm)?;
        if let Some(hostname) = &setup.hostname {
            sys::set_hostname(hostname).map_err(fail(Step::Container, b"hostname"))?;
        }
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                setup.name.clone(),
                Slot::Running(Container {
                    ns: entered.ns,
                    root: entered.root,
                }),
            );
        Ok(created)
    }

    /// Moves the calling thread into the running container `name` (its
    /// mount namespace and root). An unknown name, or a container whose
    /// first command has ended, is `ENOENT`.
    pub(crate) fn join(&self, name: &[u8]) -> Result<(), Failure> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(Slot::Running(container)) = table.get(name) else {
            return Err(fail(Step::Container, &named("no running container", name))(
                ENOENT,
            ));
        };
        let failed = |what: &[u8]| {
            fail(
                Step::Container,
                &named(&String::from_utf8_lossy(what), name),
            )
        };
        sys::join_mounts(container.ns.as_fd()).map_err(failed(b"setns into"))?;
        sys::change_root(container.root.as_fd()).map_err(failed(b"chroot into"))
    }

    /// Mounts the pod's `/dev/shm` the first time a container is created.
    fn mount_pod_shm(&self) -> Result<(), Failure> {
        let mut mounted = self
            .pod_shm_mounted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *mounted {
            return Ok(());
        }
        let failed = || fail(Step::Container, self.pod_shm.to_bytes());
        let path = std::ffi::OsStr::from_bytes(self.pod_shm.to_bytes());
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed()(e.raw_os_error().unwrap_or(5))),
        }
        mount_fs(
            Some(c"shm"),
            &self.pod_shm,
            Some(c"tmpfs"),
            MS_NOSUID | MS_NODEV,
            Some(c"mode=1777,size=65536k"),
        )
        .map_err(failed())?;
        *mounted = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
