//! Upper bounds on configuration sizes.
//!
//! A configuration may come from an untrusted source (a TOML file, command-line
//! flags). These bounds keep every check's cost bounded: a config beyond them
//! is rejected with a typed error instead of being processed.

/// The most vCPUs a microVM may have (the field is a `u8`; 0 is rejected).
pub const MAX_VCPUS: u8 = u8::MAX;

/// The most virtio-fs mapped directories one microVM may have.
pub const MAX_MAPPED_DIRS: usize = 1024;

/// The most port mappings one microVM may have.
pub const MAX_PORT_MAPPINGS: usize = 4096;

/// The most environment variables one microVM may have.
pub const MAX_ENV_VARS: usize = 4096;

/// The most arguments one microVM command may have.
pub const MAX_ARGS: usize = 4096;

/// The most resource limits one microVM may have (there are 16 resources).
pub const MAX_RLIMITS: usize = 16;

/// The longest single string (argument, path, env entry) in bytes.
///
/// Linux limits one argument or environment string to `MAX_ARG_STRLEN`
/// (32 pages, 128 KiB); anything longer could not reach the guest's `execve`.
pub const MAX_STRING_LEN: usize = 128 * 1024;

/// The longest guest or host path in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
