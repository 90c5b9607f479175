//! Errors of a warm pool of VMs ([`crate::pool`]): a pool config or a
//! claim that does not fit, and a pool that has no VM to give.

use std::time::Duration;

use monocore_rules::Field;

use super::MonocoreError;

/// Why a pool could not be made, or a sandbox not claimed from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool must hold at least one VM, and at most
    /// [`MAX_POOL_SIZE`](crate::pool::MAX_POOL_SIZE).
    #[error("pool size {size}: a pool holds 1 to {max} VMs")]
    Size {
        /// The size asked for.
        size: usize,
        /// The largest size.
        max: usize,
    },
    /// The claim asks for more RAM than the pool's VMs have.
    #[error("the sandbox asks for {asked} MiB of RAM; this pool's VMs have {pool} MiB")]
    RamTooLarge {
        /// MiB asked for.
        asked: u32,
        /// MiB each pool VM has.
        pool: u32,
    },
    /// The claim asks for more vCPUs than the pool's VMs have.
    #[error("the sandbox asks for {asked} vCPUs; this pool's VMs have {pool}")]
    TooManyVcpus {
        /// vCPUs asked for.
        asked: u8,
        /// vCPUs each pool VM has.
        pool: u8,
    },
    /// A setting a VM takes only when it boots, which a booted pool VM
    /// therefore cannot take.
    #[error("`{}` cannot be given to a pooled VM: {reason}", .field.key())]
    Unsupported {
        /// The config key.
        field: Field,
        /// Why a booted VM cannot take it.
        reason: &'static str,
    },
    /// No VM was ready within the claim's deadline.
    #[error("no VM of the pool was ready within {waited:?}")]
    Empty {
        /// How long the claim waited.
        waited: Duration,
    },
    /// The pool is being dropped.
    #[error("the pool is closed")]
    Closed,
    /// A VM of the pool failed to boot, and none is ready.
    #[error("a VM of the pool failed to boot")]
    Boot(#[source] Box<MonocoreError>),
}
