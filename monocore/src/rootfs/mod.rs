//! Minimal guest root filesystems built from Debian's `busybox-static`.
//!
//! For a program that just needs a root filesystem to run a command in,
//! [`RunRootfs::busybox`] is the one call: it prepares the default busybox
//! tree once in the [cache directory](crate::state::cache_dir) and gives you a private
//! copy for one VM, removed when dropped. The `monocore` command uses it
//! when no `--root` is given; the tests and benchmarks use it to boot real
//! guests.
//!
//! ```no_run
//! use monocore::{rootfs::RunRootfs, vm::MicroVmConfig};
//! let rootfs = RunRootfs::busybox()?; // needs `busybox-static` installed
//! let config = MicroVmConfig::new(rootfs.path(), 256);
//! // … spawn a VM on it; the copy is removed when `rootfs` is dropped.
//! # Ok::<(), monocore::MonocoreError>(())
//! ```
//!
//! The parts, for other trees:
//!
//! * [`prepare_template`] builds a pristine template once, in a cache
//!   directory. It is idempotent and safe to run concurrently: the tree is
//!   built in a private temporary directory and moved into place with one
//!   atomic `rename`, so a reader sees either no template or a complete one.
//!   If two processes race, one rename wins and the other's tree is removed.
//! * [`RunRootfs::copy_of`] makes a private, writable copy of a template for
//!   one run, removed when dropped. A guest can write to its root filesystem
//!   (it is shared over virtio-fs), so runs never share one: untrusted code in
//!   one run cannot plant files that a later run would execute. A copy is
//!   held by a lock while its process lives, so one left behind by a killed
//!   process (`kill -9`, Ctrl-C without a handler) is removed by the next
//!   copy made in the same directory.

mod busybox;
mod copy;
pub(crate) mod inroot;
mod mount_point;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

pub use crate::error::RootfsError;
use crate::{
    error::{MonocoreResult, rootfs::io_at},
    state::{RunDir, runs_dir},
};
pub use busybox::{
    BUSYBOX_PATHS, build_busybox_tree, find_busybox, populate_busybox_tree, prepare_template,
    prepare_template_in, sweep_staging,
};
pub(crate) use copy::copy_tree;
pub use mount_point::{MountPoint, make_mount_point};

/// A private, writable copy of a rootfs template for one run; removed when
/// dropped.
#[derive(Debug)]
pub struct RunRootfs {
    /// The copy: `guest/` in the run directory.
    root: PathBuf,
    // `run-<suffix>/` with its lock (held while this lives) and the copy;
    // removed on drop.
    _run: RunDir,
}

impl RunRootfs {
    /// A private copy of the default busybox root filesystem, for one VM:
    /// the template is prepared once ([`prepare_template`]), then copied
    /// ([`copy_of`](Self::copy_of)) into `runs` in the
    /// [cache directory](crate::state::cache_dir). The copy is removed when this is
    /// dropped (or, if the process is killed first, by the next call).
    ///
    /// Needs a static busybox (Debian: `apt-get install busybox-static`);
    /// without one, the error says so
    /// ([`RootfsError::BusyboxNotFound`] in [`MonocoreError::RootfsPrepare`](crate::MonocoreError::RootfsPrepare)).
    pub fn busybox() -> MonocoreResult<Self> {
        let template = prepare_template()?;
        Self::copy_of(&template, &runs_dir())
    }

    /// Copies `template` (regular files, directories and symlinks, the links
    /// copied as links, never followed) into a new private directory under
    /// `parent`. `parent` is created if needed and must be private to this
    /// user (see [`ensure_private_dir`]): in a shared directory another user
    /// could swap the new directory for a symlink and redirect the copy.
    /// Copies in `parent` whose process has died are removed first.
    pub fn copy_of(template: &Path, parent: &Path) -> MonocoreResult<Self> {
        let run = RunDir::create(parent)?;
        let root = run.paths().guest_root();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).map_err(io_at(&root))?;
        copy_tree(template, &root)?;
        Ok(Self { root, _run: run })
    }

    /// The copy's path.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl AsRef<Path> for RunRootfs {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

#[cfg(test)]
mod tests;
