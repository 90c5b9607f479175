//! [`StateError`]: monocore's on-disk state (the cache directory, the VMs'
//! run directories) cannot be used.

use std::{fmt, io, path::PathBuf};

/// Why a directory of monocore's state cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A cache directory (or the parent of run directories) is not private
    /// to this user: another user could plant a template or swap a run
    /// directory for a symlink.
    #[error(
        "unsafe cache directory {}: {reason}; remove it or set MONOCORE_CACHE_DIR to a directory \
         only you can write",
        path.display()
    )]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: UnsafeDirReason,
    },
    /// A directory of the state cannot be created or inspected.
    #[error("cannot use the directory {}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A VM's private run directory cannot be created, or joined.
    #[error("cannot create the VM's run directory in {}", dir.display())]
    RunDir {
        /// The parent directory (the runs directory).
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The control socket's path would be longer than a Unix socket path
    /// may be.
    #[error(
        "the control socket path {} is longer than a Unix socket path may be ({max} bytes); use a \
         shorter runs directory (SpawnOptions::runs_dir or MONOCORE_CACHE_DIR)",
        path.display()
    )]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// The longest path a Unix socket takes.
        max: usize,
    },
}

/// What makes a directory unsafe for monocore's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeDirReason {
    /// It is a symlink.
    Symlink,
    /// It is not a directory.
    NotADirectory,
    /// It belongs to another user.
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// This user's uid.
        me: u32,
    },
}

impl fmt::Display for UnsafeDirReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => f.write_str("it is a symlink"),
            Self::NotADirectory => f.write_str("it is not a directory"),
            Self::Owner { owner, me } => {
                write!(f, "it is owned by uid {owner}, not by this user (uid {me})")
            }
        }
    }
}
