//! MicroVM configuration and its validation.

mod config;
mod log_level;
mod microvm;
mod rlimit;
mod validate;

pub use config::{MicroVmBuilder, MicroVmConfig, MicroVmConfigBuilder, micro_vm_config_builder};
pub use log_level::LogLevel;
pub use microvm::MicroVm;
pub use rlimit::{LinuxRLimitResource, LinuxRlimit};
