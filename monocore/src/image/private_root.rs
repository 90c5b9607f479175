//! A private root for one VM, copied from an image's unpacked root.
//!
//! The choice: a **copy** of the cached, read-only tree into the VM's own
//! run directory, by the crate's one tree copier (`crate::rootfs`'s
//! `copy.rs`): each regular file cloned with `FICLONE` (a reflink: no data
//! copied, on btrfs, XFS and others that share extents) and otherwise
//! copied in the kernel (`copy_file_range`). Hardlinks stay hardlinks;
//! modes, modification times and (when root) ownership are kept.
//!
//! Not an overlay: an overlayfs mount needs privileges (or a user
//! namespace) on the host, and the guest can write to its root (it is a
//! virtio-fs share), so each VM needs its own writable tree anyway; a
//! guest never sees, or changes, the cached tree another VM copies from.

use std::path::{Path, PathBuf};

use super::{ImageConfig, store::ImageRecord};
use crate::state::RunDir;

/// A private, writable root for one VM, made from a pulled image, with the
/// image's run defaults. Removed when dropped (or, if the process is
/// killed first, by the next VM's set-up in the same directory).
#[derive(Debug)]
pub struct ImageRootfs {
    root: PathBuf,
    config: ImageConfig,
    record: ImageRecord,
    _run: RunDir,
}

impl ImageRootfs {
    pub(crate) fn new(
        root: PathBuf,
        config: ImageConfig,
        record: ImageRecord,
        run: RunDir,
    ) -> Self {
        Self {
            root,
            config,
            record,
            _run: run,
        }
    }

    /// The root's path: give it to the VM as its `root_path`.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The image's run defaults; [`ImageConfig::apply`] puts them in a
    /// config.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// What the cache knows of the image (digests, layers, sizes).
    pub fn record(&self) -> &ImageRecord {
        &self.record
    }
}

impl AsRef<Path> for ImageRootfs {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}
