/// The number of vCPUs a microVM gets unless told otherwise.
pub const DEFAULT_NUM_VCPUS: u8 = 1;

/// The guest memory, in MiB, that the `monocore` command uses unless told
/// otherwise. (The library has no default: `ram_mib` is required.)
pub const DEFAULT_RAM_MIB: u32 = 1024;
