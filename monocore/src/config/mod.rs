//! The config model and its validation: [`MicroVmConfig`] (everything one
//! microVM needs), its value types, and [`MicroVm`], a config that passed
//! validation. Nothing here starts a process or calls libkrun; the only I/O
//! is validation's check that the root and the mapped directories exist,
//! and the TOML loader reading its file.
//!
//! - `microvm_config.rs`: [`MicroVmConfig`], with the generated typestate
//!   builder ([`MicroVmConfigBuilder`]) and [`MicroVmBuilder`];
//! - `validate.rs`: [`MicroVmConfig::validate`]: the config as a
//!   `monocore_rules::ConfigView` through `monocore_rules::check_config`
//!   (the call `vm!` makes at compile time), and the checks that need the
//!   filesystem;
//! - `microvm.rs`: [`MicroVm`], a validated config;
//! - the value types, each parsed from its string form with
//!   [`FromStr`](std::str::FromStr) and printed back to it with
//!   [`Display`](std::fmt::Display) (the two round-trip; serde goes through
//!   that form): [`EnvPair`], [`PathPair`], [`PortPair`], [`LinuxRlimit`],
//!   [`LogLevel`];
//! - [`file`]: TOML config files, with the `vm!` keys.

mod allow_entry;
mod defaults;
mod env_pair;
pub mod file;
mod log_level;
mod microvm;
mod microvm_config;
mod path_pair;
mod port_pair;
mod rlimit;
pub(crate) mod serde_str;
mod validate;

pub use allow_entry::AllowEntry;
pub use defaults::*;
pub use env_pair::EnvPair;
pub use log_level::LogLevel;
pub use microvm::MicroVm;
pub use microvm_config::{
    MicroVmBuilder, MicroVmConfig, MicroVmConfigBuilder, micro_vm_config_builder,
};
pub use monocore_rules::egress;
pub use monocore_rules::limits;
pub use monocore_rules::{
    EnvPairError, EnvPairErrorKind, GuestPathError, GuestStringError, HostPathError, PathPairError,
    PathPairErrorKind, PortPairError, PortPairErrorKind, RangeError, RlimitError, RlimitErrorKind,
};
pub use path_pair::PathPair;
pub use port_pair::PortPair;
pub use rlimit::{LinuxRlimit, LinuxRlimitResource};
