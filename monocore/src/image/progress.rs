//! What a pull reports while it runs.

use super::Digest;

/// One step of a pull, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullEvent<'a> {
    /// The reference resolved to a manifest with this many layers.
    Resolved {
        /// The manifest's digest.
        manifest: &'a Digest,
        /// How many layers it has.
        layers: usize,
    },
    /// Another process holds the lock of this blob or root: waiting for it.
    Waiting {
        /// The blob or image config digest.
        digest: &'a Digest,
    },
    /// A layer was already in the cache.
    Cached {
        /// The layer.
        digest: &'a Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of a layer arrived.
    Downloading {
        /// The layer.
        digest: &'a Digest,
        /// Bytes so far (with what an interrupted pull left).
        done: u64,
        /// Its size.
        total: u64,
    },
    /// A layer is complete and verified.
    Downloaded {
        /// The layer.
        digest: &'a Digest,
        /// Its size.
        size: u64,
    },
    /// Unpacking layer `index` (from 0) of `count`.
    Unpacking {
        /// The layer.
        digest: &'a Digest,
        /// Its position, from 0.
        index: usize,
        /// How many layers.
        count: usize,
    },
}

/// Receives [`PullEvent`]s; `monocore pull` draws per-layer progress on a
/// terminal and prints plain lines otherwise.
pub trait Progress: Send + Sync {
    /// Called for every event, from the pulling thread.
    fn event(&self, event: PullEvent<'_>);
}
