//! [`PreparedVm`]: a libkrun context with a validated config applied, and
//! the ways to get one and enter it in this process ([`MicroVm::prepare`],
//! [`MicroVm::start`]), and to check first that this host can run it
//! ([`MicroVm::check_support`]). See [`super::plan`] for what is applied.

use std::{convert::Infallible, os::fd::OwnedFd, path::Path};

use super::{
    guest_files,
    krun::KrunContext,
    plan::Plan,
    vmm_log::{self, Installed, LogTarget},
};
use crate::{
    config::{LogLevel, MicroVm},
    error::{HelperError, MonocoreResult},
    host::{
        self, fit,
        kernel::{GuestKernel, KernelChoice},
    },
    state::{self, HeldRun, RunDir},
};

/// A libkrun context with a config fully applied, ready to enter.
///
/// Made by [`MicroVm::prepare`]. Dropping it frees the context and removes
/// the VM's private run directory without starting anything.
#[derive(Debug)]
pub struct PreparedVm {
    ctx: KrunContext,
    log_level: LogLevel,
    /// With `net`: started right before the VM is entered.
    net: Option<crate::net::WiredNet>,
    // Dropped after the context: the run directory the context points at.
    _run: RunHold,
}

/// How a prepared VM keeps its private run directory.
#[derive(Debug)]
enum RunHold {
    /// It made the directory, and removes it when dropped.
    Owned { _dir: RunDir },
    /// Another process (the one that spawned the VM helper) owns it; this
    /// one holds its lock until it ends.
    Joined { _held: HeldRun },
}

impl PreparedVm {
    /// Enters the VM in this process with `krun_start_enter`.
    ///
    /// **Returns only on error.** On success libkrun runs the guest and,
    /// when the guest exits, ends this whole process (`_exit`) with the
    /// guest's exit code: no destructor runs and nothing after this call
    /// executes. Use [`MicroVm::spawn`] to run a VM and keep your process.
    /// (The VM's run directory is then removed by a later run's sweep.)
    ///
    /// The VMM logs to this process's stderr at the config's log level. If
    /// the program has already set a [`log`](https://docs.rs/log) logger,
    /// that logger is kept and receives the VMM's records instead (libkrun
    /// logs through the same `log` facade); nothing panics or aborts.
    pub fn enter(mut self) -> MonocoreResult<Infallible> {
        vmm_log::install(LogTarget::Stderr, self.log_level, false);
        self.start_net()?;
        Err(self.ctx.start_enter())
    }

    /// Like [`enter`](Self::enter), with the VMM log going to `log_fd` and
    /// `RUST_LOG` refining the filter. Used by the VM helper, whose parent
    /// reads that log: there, a logger that is already set (it cannot be
    /// the program's own, whose `main` never runs in the helper) is an
    /// error rather than a log the parent never sees.
    pub(crate) fn enter_with_log(mut self, log_fd: OwnedFd) -> MonocoreResult<Infallible> {
        if vmm_log::install(LogTarget::Fd(log_fd), self.log_level, true) == Installed::Existing {
            return Err(HelperError::LoggerAlreadySet.into());
        }
        self.start_net()?;
        Err(self.ctx.start_enter())
    }

    /// Starts the network (with `net`) unless it has started: `enter` does
    /// it last; the VM helper does it earlier, before it tells its parent
    /// it is ready, so that a network that cannot start is a start-up
    /// failure, reported as such.
    pub(crate) fn start_net(&mut self) -> MonocoreResult<()> {
        if let Some(net) = self.net.take() {
            net.start()?;
        }
        Ok(())
    }

    /// The libkrun context id (for diagnostics).
    pub fn context_id(&self) -> u32 {
        self.ctx.id()
    }
}

impl MicroVm {
    /// Applies the validated config to a new libkrun context, with the
    /// kernel [`KernelChoice::Auto`] picks: makes the VM's private run
    /// directory (the guest agent and its run spec, see [`crate::kernel`]
    /// and the `vm` module docs), then makes every `krun_*` configuration
    /// call. Nothing is started, and nothing is written to the root
    /// filesystem.
    ///
    /// ```
    /// use monocore::{kernel::KernelChoice, vm::{MicroVm, MicroVmConfig}};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.exec_path = Some("/bin/true".into());
    /// let vm = MicroVm::from_config(config)?;
    /// // `prepare()` picks the kernel for this host; libkrunfw's kernel is
    /// // named here so the example runs anywhere (it is loaded only when a
    /// // VM starts).
    /// let prepared = vm.prepare_with_kernel(&KernelChoice::Libkrunfw)?;
    /// drop(prepared); // frees the context and the run directory; nothing ran
    ///
    /// // A setting libkrun cannot honour is refused by validation, never
    /// // by libkrun and never ignored.
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.assigned_ip = Some("10.0.0.2".parse()?);
    /// let err = MicroVm::from_config(config).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid microVM configuration: ip: the guest's IPv4 address cannot be set"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare(&self) -> MonocoreResult<PreparedVm> {
        self.prepare_with_kernel(&KernelChoice::Auto)
    }

    /// [`prepare`](Self::prepare) with this kernel.
    pub fn prepare_with_kernel(&self, kernel: &KernelChoice) -> MonocoreResult<PreparedVm> {
        let plan = Plan::new(self.get_config(), &kernel.resolve()?)?;
        let run = RunDir::create(&state::vms_dir())?;
        guest_files::install(run.paths(), &plan.spec)?;
        let (ctx, log_level, net) = plan.apply(run.paths())?;
        Ok(PreparedVm {
            ctx,
            log_level,
            net,
            _run: RunHold::Owned { _dir: run },
        })
    }

    /// Prepares the VM in the run directory that the spawning process made
    /// (`run_dir`, whose private root already holds the agent and the
    /// spec); used by the VM helper.
    pub(crate) fn prepare_in(
        &self,
        run_dir: &Path,
        kernel: &GuestKernel,
        net: Option<crate::net::NetPlan>,
    ) -> MonocoreResult<PreparedVm> {
        let plan = Plan::with_net(self.get_config(), kernel, net)?;
        let held = HeldRun::join(run_dir)?;
        let (ctx, log_level, net) = plan.apply(held.paths())?;
        Ok(PreparedVm {
            ctx,
            log_level,
            net,
            _run: RunHold::Joined { _held: held },
        })
    }

    /// Checks the facts of this host that a config must fit, with the
    /// kernel [`KernelChoice::Auto`] picks, without any FFI call or file
    /// write: a kernel that can boot here exists; `/dev/kvm` opens; the RAM
    /// is no more than the host has; the vCPUs no more than its KVM runs;
    /// networking only with a kernel that has TSI (libkrunfw's). What a
    /// config's values must be is validation's ([`MicroVmConfig::validate`]),
    /// done when the `MicroVm` was made; this is the rest, so that a VM that
    /// starts does not fail in `krun_start_enter` with `EINVAL`.
    /// [`spawn`](Self::spawn) and [`start`](Self::start) make this check
    /// first, so nothing starts for a config this host cannot run.
    ///
    /// ```
    /// use monocore::{kernel::KernelChoice, vm::{MicroVm, MicroVmConfig}, MonocoreError};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), u32::MAX); // 4 PiB
    /// let vm = MicroVm::from_config(config.clone())?; // valid ...
    /// let err = vm.check_support_with_kernel(&KernelChoice::Libkrunfw).unwrap_err();
    /// assert!(matches!(err, MonocoreError::HostCannotRun(_) | MonocoreError::HostCannotBoot { .. }), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_support(&self) -> MonocoreResult<()> {
        self.check_support_with_kernel(&KernelChoice::Auto)
    }

    /// [`check_support`](Self::check_support) with this kernel.
    pub fn check_support_with_kernel(&self, kernel: &KernelChoice) -> MonocoreResult<()> {
        let kernel = kernel.resolve()?;
        fit::check(self.get_config(), &kernel, &host::check_kvm_limits())
    }

    /// Runs the VM in this process: [`prepare`](Self::prepare), then
    /// [`PreparedVm::enter`].
    ///
    /// **Returns only on error.** On success the VMM ends this whole process
    /// with the guest's exit code when the guest exits (`krun_start_enter`
    /// never returns). To keep your process, use [`MicroVm::spawn`].
    pub fn start(self) -> MonocoreResult<Infallible> {
        self.check_support()?;
        self.prepare()?.enter()
    }
}
