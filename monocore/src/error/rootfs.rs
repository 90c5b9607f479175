//! [`RootfsError`]: why a default (busybox) root filesystem could not be
//! prepared.

use std::{io, path::PathBuf};

use super::StateError;

/// Why a rootfs could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// No static busybox binary was found.
    #[error(
        "no static busybox found at {searched:?}: install it with `apt-get install busybox-static` \
         (or run ./scripts/setup.sh), or give the VM another root filesystem (`monocore run \
         --root DIR`)"
    )]
    BusyboxNotFound {
        /// The paths looked at.
        searched: Vec<PathBuf>,
    },
    /// The cache directory the template lives in cannot be used (it is not
    /// private to this user, or cannot be created).
    #[error(transparent)]
    State(#[from] StateError),
    /// A mount point could not be made inside a root.
    #[error("cannot make the mount point {} inside {}", target.display(), root.display())]
    MountPoint {
        /// The root.
        root: PathBuf,
        /// The mount point, a path inside the root.
        target: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A filesystem operation failed.
    #[error("cannot prepare the rootfs at {}", path.display())]
    Io {
        /// The path being written or read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A closure that locates an I/O error at `path`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}
