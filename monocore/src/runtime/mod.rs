//! Running a validated config on libkrun: in this process
//! ([`MicroVm::start`]), or in a child process that is this program again,
//! the *VM helper* ([`MicroVm::spawn`]), with a [`VmHandle`] to wait on,
//! time out, kill, and run more commands in ([`VmHandle::exec`]).
//!
//! - [`krun`]: the one file that calls libkrun (an owning wrapper of a
//!   context, every status checked at once);
//! - [`plan`]: a config turned into what libkrun and the guest agent read,
//!   and applied to a context; [`apply`]: the [`PreparedVm`] it makes, and
//!   the host-fit check before it;
//! - [`guest_files`]: the agent, its run spec and its report in the VM's
//!   private root; [`vmm_log`]: the VMM's logger;
//! - [`protocol`]: the parent ↔ helper protocol, both ends; [`helper`]: the
//!   helper process; [`self_helper`]: how this program is its own helper;
//! - [`spawn`], [`options`]: starting a helper; [`monitor`]: the threads that
//!   read its channels; [`exit`]: how a VM ended; [`handle`]: [`VmHandle`];
//! - [`control`]: the client of the guest agent's control channel
//!   (`exec`, files in and out, `shutdown`); [`running`]: VMs of any process, found by ID.
//!
//! The layers below: [`crate::config`] (what to run), [`crate::host`]
//! (whether and with which kernel this host can run it), [`crate::state`]
//! (where its files go), [`crate::error`].

pub(crate) mod apply;
pub(crate) mod control;
pub(crate) mod exit;
pub(crate) mod guest_files;
pub(crate) mod handle;
pub(crate) mod helper;
pub(crate) mod krun;
pub(crate) mod monitor;
pub(crate) mod options;
pub(crate) mod plan;
pub(crate) mod protocol;
pub(crate) mod running;
pub(crate) mod self_helper;
pub(crate) mod spawn;
pub(crate) mod vmm_log;

pub use apply::PreparedVm;
pub use control::{
    CopySummary, GuestCommand, GuestContainer, GuestFileKind, GuestFiles, GuestMetadata,
    GuestOutput, GuestOutputs, GuestProcess, GuestSignaller, GuestStdin,
};
pub use exit::VmExitStatus;
pub use handle::VmHandle;
pub use helper::helper_main;
pub use options::SpawnOptions;
pub use running::RunningVm;

#[cfg(doc)]
use crate::config::MicroVm;
