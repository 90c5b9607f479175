//! A run directory: one VM's (or one private root copy's) private
//! directory, and every name inside it.
//!
//! ```text
//! <parent>/run-<id>/
//!     lock          held (flock, shared) by every process using the run
//!     meta.json     what the spawning process records (pid, command, start)
//!     control.sock  the guest agent's control channel (a Unix socket)
//!     guest/        the VM's private root filesystem (libkrun's root share)
//!         .monocore/agent    the guest agent   } monocore_agent::paths,
//!         .monocore/spec     its run spec      } as the guest sees them
//!         .monocore/status   its report        }
//!         .monocore/root/    where it mounts the user's root filesystem
//! ```
//!
//! (A private root copy uses only `lock` and `guest/`, which holds the
//! copy.) A run directory is set up under a temporary `.new-<pid>-…` name,
//! with its lock already held, and renamed into place; so every `run-*`
//! directory has a holder until its processes are gone, however they end.
//! [`RunDir::create`] first sweeps the parent ([`super::sweep`]).

use std::{
    fs::{self, File},
    io::{self, Read},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use super::sweep::{owned_name, sweep};
use crate::error::{MonocoreResult, StateError};

/// The name prefix of a run directory; the rest of the name is its ID.
pub(crate) const RUN_PREFIX: &str = "run-";
/// The name prefix of a run directory being set up.
pub(crate) const SETUP_PREFIX: &str = ".new-";
/// The lock file every process using the run holds.
pub(crate) const LOCK: &str = "lock";
const META: &str = "meta.json";
const META_TEMP: &str = ".meta.json.tmp";
const CONTROL_SOCKET: &str = "control.sock";
const GUEST: &str = "guest";
/// The longest path a Unix socket address holds (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The most `meta.json` that is read.
const MAX_META_LEN: u64 = 256 << 10;

/// The names inside one run directory; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunPaths {
    dir: PathBuf,
}

impl RunPaths {
    /// The run directory `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The run directory itself.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its ID: the directory's name without `run-`.
    pub(crate) fn id(&self) -> Option<&str> {
        self.dir.file_name()?.to_str()?.strip_prefix(RUN_PREFIX)
    }

    /// The lock file.
    pub(crate) fn lock(&self) -> PathBuf {
        self.dir.join(LOCK)
    }

    /// The VM's private root filesystem.
    pub(crate) fn guest_root(&self) -> PathBuf {
        self.dir.join(GUEST)
    }

    /// A file of the guest agent's in the private root, named by its path
    /// in the guest (a `monocore_agent::paths` constant).
    pub(crate) fn guest_file(&self, guest_path: &str) -> PathBuf {
        self.guest_root().join(guest_path.trim_start_matches('/'))
    }

    /// The control channel's Unix socket, if its path fits in a Unix socket
    /// address.
    pub(crate) fn control_socket(&self) -> Result<PathBuf, StateError> {
        let path = self.dir.join(CONTROL_SOCKET);
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(StateError::SocketPathTooLong {
                path,
                max: MAX_SOCKET_PATH,
            });
        }
        Ok(path)
    }

    /// Whether a live process holds the run (see [`super::sweep`]).
    pub(crate) fn is_held(&self) -> bool {
        let Ok(file) = open_nofollow(&self.lock()) else {
            return false;
        };
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err()
    }

    /// Records `meta` (atomically: a temporary file, then a rename).
    pub(crate) fn write_meta(&self, meta: &Meta) -> MonocoreResult<()> {
        let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        let temp = self.dir.join(META_TEMP);
        fs::write(&temp, json)?;
        fs::rename(&temp, self.dir.join(META))?;
        Ok(())
    }

    /// What the spawning process recorded, if it did (read without
    /// following a symlink, at most 256 KiB).
    pub(crate) fn read_meta(&self) -> Option<Meta> {
        let file = open_nofollow(&self.dir.join(META)).ok()?;
        let mut json = Vec::new();
        file.take(MAX_META_LEN).read_to_end(&mut json).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// What the spawning process records about a VM in `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The VM helper's (the VMM's) pid.
    pub(crate) pid: u32,
    /// The command the VM was started with (`exec_path` and `args`).
    pub(crate) command: Vec<String>,
    /// When it was started, in seconds since the Unix epoch.
    pub(crate) started: u64,
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn lock(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, FlockOperation::LockShared).map_err(io::Error::from)
}

/// A run directory this process made: it holds its lock, and removes it
/// when dropped.
#[derive(Debug)]
pub(crate) struct RunDir {
    paths: RunPaths,
    _lock: File,
}

impl RunDir {
    /// Sweeps `parent`, then creates a new run directory in it. `parent` is
    /// created if needed and must be private to this user.
    pub(crate) fn create(parent: &Path) -> MonocoreResult<Self> {
        super::ensure_private_dir(parent)?;
        sweep(parent);
        let run_dir_error = |source| StateError::RunDir {
            dir: parent.to_path_buf(),
            source,
        };
        let staging = parent.join(owned_name(SETUP_PREFIX));
        let setup = || -> io::Result<File> {
            fs::DirBuilder::new().mode(0o700).create(&staging)?;
            let file = File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(staging.join(LOCK))?;
            lock(&file)?;
            fs::DirBuilder::new()
                .mode(0o755)
                .create(staging.join(GUEST))?;
            Ok(file)
        };
        let file = match setup() {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(run_dir_error(e).into());
            }
        };
        let dir = parent.join(format!("{RUN_PREFIX}{}", crate::util::unique_suffix()));
        if let Err(e) = fs::rename(&staging, &dir) {
            let _ = fs::remove_dir_all(&staging);
            return Err(run_dir_error(e).into());
        }
        Ok(Self {
            paths: RunPaths::new(dir),
            _lock: file,
        })
    }

    /// Its names.
    pub(crate) fn paths(&self) -> &RunPaths {
        &self.paths
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(self.paths.dir());
    }
}

/// A run directory another process made, which this one joins as a holder
/// (the VM helper does, so a run stays locked until the VMM is gone too).
/// The lock is held while this lives; the directory is not removed.
#[derive(Debug)]
pub(crate) struct HeldRun {
    paths: RunPaths,
    _lock: File,
}

impl HeldRun {
    /// Joins the holders of the run directory `dir`.
    pub(crate) fn join(dir: &Path) -> MonocoreResult<Self> {
        let paths = RunPaths::new(dir);
        let run_dir_error = |source| StateError::RunDir {
            dir: dir.to_path_buf(),
            source,
        };
        let file = open_nofollow(&paths.lock()).map_err(run_dir_error)?;
        lock(&file).map_err(run_dir_error)?;
        Ok(Self { paths, _lock: file })
    }

    /// Its names.
    pub(crate) fn paths(&self) -> &RunPaths {
        &self.paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MonocoreError;

    #[test]
    fn a_run_dir_is_private_locked_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let run = RunDir::create(parent.path()).unwrap();
        let paths = run.paths().clone();
        assert!(paths.guest_root().is_dir());
        assert!(paths.id().is_some_and(|id| !id.is_empty()));
        assert!(paths.is_held());
        // Another sweep leaves a held run alone.
        sweep(parent.path());
        assert!(paths.dir().is_dir());
        drop(run);
        assert!(!paths.dir().exists());
        assert!(!paths.is_held());
    }

    #[test]
    fn every_name_is_inside_the_run_dir() {
        let paths = RunPaths::new("/c/vms/run-abc");
        assert_eq!(paths.id(), Some("abc"));
        assert_eq!(paths.lock(), Path::new("/c/vms/run-abc/lock"));
        assert_eq!(paths.guest_root(), Path::new("/c/vms/run-abc/guest"));
        assert_eq!(
            paths.guest_file(monocore_agent::paths::REPORT),
            Path::new("/c/vms/run-abc/guest/.monocore/status")
        );
        assert_eq!(
            paths.control_socket().unwrap(),
            Path::new("/c/vms/run-abc/control.sock")
        );
        let long = RunPaths::new(format!("/{}/run-x", "d".repeat(100)));
        assert!(matches!(
            long.control_socket(),
            Err(StateError::SocketPathTooLong { max: 107, .. })
        ));
    }

    #[test]
    fn meta_round_trips_and_a_symlinked_meta_is_not_read() {
        let parent = tempfile::tempdir().unwrap();
        let run = RunDir::create(parent.path()).unwrap();
        let meta = Meta {
            pid: 42,
            command: vec!["/bin/sh".into(), "-c".into(), "x".into()],
            started: 7,
        };
        run.paths().write_meta(&meta).unwrap();
        assert_eq!(run.paths().read_meta(), Some(meta));
        let elsewhere = tempfile::NamedTempFile::new().unwrap();
        fs::remove_file(run.paths().dir().join(META)).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), run.paths().dir().join(META)).unwrap();
        assert_eq!(run.paths().read_meta(), None);
    }

    #[test]
    fn a_run_dir_cannot_be_made_in_a_symlinked_parent() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            RunDir::create(&link),
            Err(MonocoreError::State(StateError::UnsafeDir { .. }))
        ));
    }

    #[test]
    fn joining_a_run_holds_it_until_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let run = RunDir::create(parent.path()).unwrap();
        let joined = HeldRun::join(run.paths().dir()).unwrap();
        assert_eq!(joined.paths(), run.paths());
        // Another open file description of the lock: the run stays held
        // while either holder lives.
        assert!(joined.paths().is_held());
        drop(joined);
        assert!(run.paths().is_held());
        assert!(matches!(
            HeldRun::join(&parent.path().join("run-none")),
            Err(MonocoreError::State(StateError::RunDir { .. }))
        ));
    }
}
