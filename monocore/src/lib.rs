//! # monocore
//!
//! Provision secure microVMs that run untrusted code in isolation.
//!
//! A microVM is described by a [`vm::MicroVmConfig`]: its root filesystem,
//! memory, vCPUs, the host directories it may see, its ports, resource
//! limits, and the command it runs. Every value that reaches the VMM is
//! checked first, and every failure is a typed [`MonocoreError`] that names
//! the offending value.
//!
//! [`vm::MicroVm::spawn`] runs a VM in a child process, and that child is
//! your own program: any program that links monocore is its own VM helper,
//! with nothing else to build, ship or call (see the `spawn` docs).
//! [`rootfs::RunRootfs::busybox`] gives a ready root filesystem.
//!
//! ```
//! use monocore::config::{EnvPair, PathPair, PortPair};
//! use monocore::vm::{LinuxRlimit, MicroVmConfig};
//!
//! let volume: PathPair = "/srv/data:/data".parse()?;
//! let port: PortPair = "8080:80".parse()?;
//! let env: EnvPair = "GREETING=hello".parse()?;
//! let limit: LinuxRlimit = "RLIMIT_NOFILE=1024:2048".parse()?;
//!
//! assert_eq!(volume.to_string(), "/srv/data:/data");
//! assert_eq!(port.get_guest(), 80);
//! assert_eq!(env.get_name(), "GREETING");
//! assert_eq!(limit.to_string(), "7=1024:2048"); // the form libkrun reads
//!
//! // A value that cannot be valid is a typed error naming it.
//! let err = "8080:80:90".parse::<PortPair>().unwrap_err();
//! assert_eq!(err.to_string(), "invalid port pair \"8080:80:90\": expected `host:guest` with one `:`");
//! # let _ = MicroVmConfig::new("/r", 1);
//! # Ok::<(), monocore::MonocoreError>(())
//! ```

#![warn(missing_docs)]

// The modules are layers; each uses only the layers below it (checked by
// `tests/architecture.rs`; see the README's "Workspace layout"), lowest
// first: util, error, config, state, rootfs, image, host, net, doctor, runtime, vm,
// pool.
pub mod config;
pub mod doctor;
pub mod error;
pub mod host;
pub mod image;
pub mod net;
pub mod pool;
pub mod rootfs;
mod runtime;
pub mod state;
mod util;
pub mod vm;

pub use error::{
    ConfigErrorKind, ErrorChain, InvalidMicroVmConfigError, MonocoreError, MonocoreResult,
};
/// Which guest kernel a VM boots (the kernel part of [`host`]).
pub use host::kernel;
/// Where a config problem is, and the rule errors every front end shows.
pub use monocore_rules::{ConfigPath, Field, Fix, RuleError};

/// The `vm!` macro (from `monocore-macros`): a [`vm::MicroVmConfig`] whose
/// literal values are checked at compile time.
///
/// The macro and the [`vm`](mod@vm) module share a name; they live in different
/// namespaces, so `use monocore::vm;` brings in both, and `vm! { … }` and
/// `vm::MicroVmConfig` resolve side by side.
pub use monocore_macros::vm;

/// The `typed_path` crate whose `Utf8UnixPathBuf` the config uses for guest
/// paths, re-exported so callers need not match its version.
pub use typed_path;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
