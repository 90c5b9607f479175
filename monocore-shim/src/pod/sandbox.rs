//! What a pod's sandbox shares with the pod's containers: its VM (booted
//! idle, with the pod's share as its root, by the sandbox task: see
//! [`crate::container`]), the share, and the pod's hostname.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use monocore::{
    MonocoreResult,
    vm::{GuestCommand, GuestContainer, GuestProcess, RunningVm},
};

use super::share::{PodShare, ShareError};
use crate::spec::PodParts;

/// The pod's VM, as its containers reach it.
#[derive(Debug)]
pub struct PodVm {
    share: PodShare,
    hostname: Option<String>,
    network_namespace: Option<PathBuf>,
    runs: PathBuf,
    /// The VM's id and its helper's pid, once started.
    vm: Mutex<Option<(String, u32)>>,
}

/// The share's directory in the sandbox's runs directory.
pub fn share_dir(runs: &Path) -> PathBuf {
    runs.join("share")
}

impl PodVm {
    /// A pod whose VM will run from `runs` (the sandbox's runs directory,
    /// made here), with the hostname and network namespace of `parts`.
    pub fn create(runs: &Path, parts: &PodParts) -> Result<Self, ShareError> {
        std::fs::create_dir_all(runs).map_err(|source| ShareError::Create {
            dir: runs.to_path_buf(),
            source,
        })?;
        Ok(Self {
            share: PodShare::create(&share_dir(runs))?,
            hostname: parts.hostname.clone(),
            network_namespace: parts.network_namespace.clone(),
            runs: runs.to_path_buf(),
            vm: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<(String, u32)>> {
        self.vm
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The share (the VM's root).
    pub fn share(&self) -> &PodShare {
        &self.share
    }

    /// The pod's hostname.
    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// The pod's network namespace, where the VM helper runs.
    pub fn network_namespace(&self) -> Option<&Path> {
        self.network_namespace.as_deref()
    }

    /// Records the started VM: its id and its helper's pid.
    pub fn started(&self, id: String, pid: u32) {
        *self.lock() = Some((id, pid));
    }

    /// The VM helper's pid (0 before it started).
    pub fn pid(&self) -> u32 {
        self.lock().as_ref().map_or(0, |(_, pid)| *pid)
    }

    /// The pod's running VM.
    fn vm(&self) -> MonocoreResult<RunningVm> {
        let id = self.lock().as_ref().map(|(id, _)| id.clone());
        let Some(id) = id else {
            return Err(monocore::error::ControlError::VmEnded.into());
        };
        RunningVm::find_in(&self.runs, &id)
    }

    /// Runs `command` in the pod's VM, waiting while it boots.
    pub fn exec(&self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        self.vm()?.exec(command)
    }

    /// Builds `container` in the pod's VM, to run its process in later.
    pub fn prepare_container(&self, container: &GuestContainer) -> MonocoreResult<()> {
        self.vm()?.prepare_container(container)
    }

    /// Forgets the container `name` in the pod's VM.
    pub fn discard_container(&self, name: &str) -> MonocoreResult<()> {
        self.vm()?.discard_container(name)
    }
}
