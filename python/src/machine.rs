//! [`Machine`]: the VM behind a `monocore.Sandbox`, booted for it or
//! claimed from a pool.

use std::time::Duration;

use monocore::{
    MonocoreResult,
    image::ImageRootfs,
    pool,
    rootfs::RunRootfs,
    vm::{GuestCommand, GuestFiles, GuestProcess, VmHandle},
};

/// A sandbox's VM and what it owns.
#[derive(Debug)]
pub(crate) enum Machine {
    /// Booted for this sandbox (idle: it runs only what it is asked).
    /// Fields drop in order: the VM before its root's copy.
    Own {
        handle: VmHandle,
        _root: Option<RunRootfs>,
        _image: Option<ImageRootfs>,
    },
    /// Claimed from a pool: the claim's root, env, workdir and limits are
    /// its commands' defaults.
    Pooled(pool::Sandbox),
}

impl Machine {
    /// The VM helper's process id.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Machine::Own { handle, .. } => handle.pid(),
            Machine::Pooled(sandbox) => sandbox.pid(),
        }
    }

    /// Starts `command` (see `VmHandle::exec`, `pool::Sandbox::exec`).
    pub(crate) fn exec(&mut self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        match self {
            Machine::Own { handle, .. } => handle.exec(command),
            Machine::Pooled(sandbox) => sandbox.exec(command),
        }
    }

    /// The guest's files, in the root its commands run in.
    pub(crate) fn files(&mut self) -> GuestFiles<'_> {
        match self {
            Machine::Own { handle, .. } => handle.files(),
            Machine::Pooled(sandbox) => sandbox.files(),
        }
    }

    /// Kills the VM and removes its files.
    pub(crate) fn kill(&mut self) -> MonocoreResult<()> {
        match self {
            Machine::Own { handle, .. } => handle.kill(),
            Machine::Pooled(sandbox) => sandbox.kill(),
        }
    }

    /// Waits until a booted VM's agent answers; a VM that ended meanwhile
    /// gives the reason it ended (a boot failure). A pooled VM is ready.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> MonocoreResult<()> {
        let Machine::Own { handle, .. } = self else {
            return Ok(());
        };
        handle.wait_ready(timeout).map_err(|error| {
            match handle.wait_timeout(Duration::from_secs(5)) {
                Err(reason) => reason,
                Ok(_) => error,
            }
        })
    }
}
