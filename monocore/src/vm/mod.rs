//! MicroVM configuration, its validation, and running it on libkrun.
//!
//! - [`MicroVm::prepare`] applies a validated config to a libkrun context;
//! - [`MicroVm::start`] enters the VM in this process (returns only on error);
//! - [`MicroVm::spawn`] runs it in a child process (this program itself,
//!   executed again as the VM helper) and returns a [`VmHandle`].

mod agent;
mod apply;
mod config;
mod exec;
mod helper;
mod host_facts;
mod krun;
mod log_level;
mod microvm;
mod rlimit;
pub(crate) mod run_dir;
mod running;
mod self_helper;
mod spawn;
pub(crate) mod validate;
mod vmm_log;

pub use apply::PreparedVm;
pub use config::{MicroVmBuilder, MicroVmConfig, MicroVmConfigBuilder, micro_vm_config_builder};
pub use exec::{GuestCommand, GuestOutput, GuestOutputs, GuestProcess, GuestStdin};
pub use helper::helper_main;
pub use log_level::LogLevel;
pub use microvm::MicroVm;
/// The guest agent's set-up steps, as named by [`MonocoreError::GuestSetup`](crate::MonocoreError::GuestSetup).
pub use monocore_agent::report::Step as GuestStep;
pub use rlimit::{LinuxRlimit, LinuxRlimitResource};
pub use running::RunningVm;
pub use self_helper::SelfHelperError;
pub use spawn::{SpawnOptions, VmExitStatus, VmHandle};
