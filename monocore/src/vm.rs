//! The microVM API in one place: the config model ([`MicroVmConfig`],
//! [`MicroVm`], from [`crate::config`]) and running it ([`MicroVm::spawn`],
//! [`VmHandle`], …, from the crate's runtime).
//!
//! - [`MicroVm::prepare`] applies a validated config to a libkrun context;
//! - [`MicroVm::start`] enters the VM in this process (returns only on error);
//! - [`MicroVm::spawn`] runs it in a child process (this program itself,
//!   executed again as the VM helper) and returns a [`VmHandle`].

pub use crate::config::{
    LinuxRlimit, LinuxRlimitResource, LogLevel, MicroVm, MicroVmBuilder, MicroVmConfig,
    MicroVmConfigBuilder, micro_vm_config_builder,
};
/// The guest agent's set-up steps, as named by [`MonocoreError::GuestSetup`](crate::MonocoreError::GuestSetup).
pub use crate::error::GuestStep;
pub use crate::error::SelfHelperError;
pub use crate::error::{GuestCommandError, GuestCommandField, GuestCommandProblem};
pub use crate::error::{GuestFileError, GuestFileField};
pub use crate::runtime::{
    CopySummary, GuestCommand, GuestContainer, GuestFileKind, GuestFiles, GuestMetadata,
    GuestOutput, GuestOutputs, GuestProcess, GuestSignaller, GuestStdin, PreparedVm, RunningVm,
    SpawnOptions, VmExitStatus, VmHandle, helper_main,
};
