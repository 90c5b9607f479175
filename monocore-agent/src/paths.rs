//! Where the VM's private root keeps the agent's files, as the guest sees
//! them (the host writes them under the private root's directory).

/// The agent binary.
pub const AGENT: &str = "/.monocore/agent";
/// The run spec ([`crate::spec`]).
pub const SPEC: &str = "/.monocore/spec";
/// The report ([`crate::report`]).
pub const REPORT: &str = "/.monocore/status";
/// Where the agent mounts the guest's root filesystem before switching into
/// it.
pub const NEW_ROOT: &str = "/.monocore/root";
