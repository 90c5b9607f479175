//! One booted, idle VM of a pool, and how it is booted.

use std::{path::Path, time::Instant};

use crate::{
    MonocoreError,
    error::MonocoreResult,
    rootfs::RunRootfs,
    state::runs_dir,
    vm::{GuestCommand, MicroVm, MicroVmConfig, SpawnOptions, VmHandle},
};

use super::PoolConfig;

/// A booted VM whose agent answers, running no command, on a private copy
/// of the pool's root.
#[derive(Debug)]
pub(crate) struct WarmVm {
    // Dropped first: the VM ends before its root is removed.
    pub(crate) vm: VmHandle,
    pub(crate) root: RunRootfs,
    pub(crate) ready_at: Instant,
}

impl WarmVm {
    /// Boots a VM of `config`'s shape on a private copy of `template`, and
    /// waits until its agent answers or `keep_waiting` says no (the pool
    /// closes).
    pub(crate) fn boot(
        config: &PoolConfig,
        template: &Path,
        keep_waiting: &dyn Fn() -> bool,
    ) -> MonocoreResult<Self> {
        let copies = config.runs_dir.clone().unwrap_or_else(runs_dir);
        let root = RunRootfs::copy_of(template, &copies)?;
        let vm_config = MicroVmConfig::builder()
            .root_path(root.path())
            .ram_mib(config.ram_mib)
            .num_vcpus(config.vcpus)
            .build();
        let mut options = SpawnOptions::new()
            .idle(true)
            .capture_console(true)
            .kernel(config.kernel.clone());
        if let Some(dir) = &config.runs_dir {
            options = options.runs_dir(dir);
        }
        if let Some((path, args)) = &config.helper {
            options = options.helper_path(path).helper_args(args.iter().cloned());
        }
        let mut vm = MicroVm::from_config(vm_config)?.spawn_with(&options)?;
        vm.wait_ready_while(config.boot_timeout, keep_waiting)?;
        warm_up(&mut vm)?;
        Ok(Self {
            vm,
            root,
            ready_at: Instant::now(),
        })
    }

    /// Whether the VM still runs (a VM that crashed while idle is not
    /// handed out).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.vm.wait_timeout(std::time::Duration::ZERO), Ok(None))
    }
}

/// The command each VM runs once booted, before it is ready: a claim's
/// first command then finds the agent's spawn path and busybox's pages
/// already in the guest (the first command in a fresh VM reads its binary
/// over virtio-fs and faults the agent's code in: about twice the cost of
/// the next one on an emulating host).
const WARM_UP: &str = "/bin/true";

/// Runs [`WARM_UP`]; a root without it is no error (its first command is
/// then only slower), a control channel that fails is.
fn warm_up(vm: &mut VmHandle) -> MonocoreResult<()> {
    match vm
        .exec(GuestCommand::new(WARM_UP))
        .and_then(|mut process| process.wait())
    {
        Ok(_) | Err(MonocoreError::GuestSetup { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
