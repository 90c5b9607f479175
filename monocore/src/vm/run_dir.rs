//! A VM's private run directory, and the sweep of ones whose owner died.
//!
//! ```text
//! <cache>/vms/run-<unpredictable suffix>/
//!     lock     held (flock, shared) by every process using the run
//!     guest/   the VM's private root filesystem (see `agent`)
//! ```
//!
//! A run directory is set up under a temporary `.new-…` name, with its lock
//! already held, and renamed into place; so every `run-*` directory has a
//! holder until its processes are gone, however they end (`kill -9`, or the
//! VMM ending the process with `_exit`). [`RunDir::create`] first sweeps the
//! parent: a `run-*` directory whose lock can be taken exclusively has no
//! live holder and is removed; a `.new-*` directory older than an hour is
//! the remains of a crash during set-up. A live run's directory is never
//! removed by a sweep.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rustix::fs::FlockOperation;

use crate::{MonocoreError, MonocoreResult};

/// How old a half-made `.new-*` directory must be before a sweep removes it.
const STALE_SETUP: Duration = Duration::from_secs(3600);

/// The parent of the run directories: `vms` in the
/// [cache directory](crate::rootfs::cache_dir).
pub(crate) fn default_parent() -> PathBuf {
    crate::rootfs::cache_dir().join("vms")
}

/// A run directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct RunDir {
    path: PathBuf,
    _lock: File,
}

fn run_dir_error(dir: &Path) -> impl FnOnce(io::Error) -> MonocoreError + '_ {
    move |source| MonocoreError::RunDir {
        dir: dir.to_path_buf(),
        source,
    }
}

fn lock(file: &File, operation: FlockOperation) -> io::Result<()> {
    rustix::fs::flock(file, operation).map_err(io::Error::from)
}

impl RunDir {
    /// Sweeps `parent`, then creates a new run directory in it. `parent` is
    /// created if needed and must be private to this user.
    pub(crate) fn create(parent: &Path) -> MonocoreResult<Self> {
        crate::rootfs::ensure_private_dir(parent)?;
        sweep(parent);
        let suffix = crate::util::unique_suffix();
        let staging = parent.join(format!(".new-{suffix}"));
        let setup = || -> io::Result<File> {
            fs::DirBuilder::new().mode(0o700).create(&staging)?;
            let file = File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(staging.join("lock"))?;
            lock(&file, FlockOperation::LockShared)?;
            fs::DirBuilder::new()
                .mode(0o755)
                .create(staging.join("guest"))?;
            Ok(file)
        };
        let file = match setup() {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(run_dir_error(parent)(e));
            }
        };
        let path = parent.join(format!("run-{suffix}"));
        if let Err(e) = fs::rename(&staging, &path) {
            let _ = fs::remove_dir_all(&staging);
            return Err(run_dir_error(parent)(e));
        }
        Ok(Self { path, _lock: file })
    }

    /// The directory.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The VM's private root filesystem.
    pub(crate) fn guest_root(&self) -> PathBuf {
        self.path.join("guest")
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Joins the holders of the run directory that contains `guest_root` (the
/// VM helper does, so a run stays locked until the VMM is gone too). The
/// lock is held while the returned file is open.
pub(crate) fn hold(guest_root: &Path) -> MonocoreResult<File> {
    let dir = guest_root.parent().unwrap_or(guest_root);
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("lock"))
        .map_err(run_dir_error(dir))?;
    lock(&file, FlockOperation::LockShared).map_err(run_dir_error(dir))?;
    Ok(file)
}

/// Removes what dead runs left in `parent`; see the module docs. Best
/// effort: a directory that cannot be removed now is left for a later sweep.
pub(crate) fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        if name.starts_with("run-") {
            let Ok(file) = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path.join("lock"))
            else {
                continue;
            };
            if lock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                let _ = fs::remove_dir_all(&path);
            }
        } else if name.starts_with(".new-") {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_SETUP);
            if old {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_dir_is_private_locked_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let run = RunDir::create(parent.path()).unwrap();
        assert!(run.guest_root().is_dir());
        let name = run.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("run-"), "{name}");
        // Another sweep leaves a held run alone.
        sweep(parent.path());
        assert!(run.path().is_dir());
        let path = run.path().to_path_buf();
        drop(run);
        assert!(!path.exists());
    }

    #[test]
    fn a_sweep_removes_only_runs_without_a_live_holder() {
        let parent = tempfile::tempdir().unwrap();
        let live = RunDir::create(parent.path()).unwrap();
        // A dead run: its lock file is there, but nobody holds it (as after
        // kill -9: the kernel drops a dead process's locks).
        let dead = parent.path().join("run-dead");
        fs::create_dir_all(dead.join("guest")).unwrap();
        fs::write(dead.join("lock"), b"").unwrap();
        // A held run of "another process": a second open file description.
        let _held = hold(&live.guest_root()).unwrap();
        // Half-made set-up remains: young ones stay, an hour-old one goes.
        let young = parent.path().join(".new-young");
        fs::create_dir(&young).unwrap();
        let old = parent.path().join(".new-old");
        fs::create_dir(&old).unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(7200);
        File::open(&old).unwrap().set_modified(hour_ago).unwrap();

        sweep(parent.path());
        assert!(!dead.exists(), "a dead run survived the sweep");
        assert!(live.path().is_dir(), "a live run was swept");
        assert!(young.exists() && !old.exists());
    }

    #[test]
    fn a_run_dir_cannot_be_made_in_another_users_or_a_symlinked_parent() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            RunDir::create(&link),
            Err(MonocoreError::RootfsPrepare(_))
        ));
    }
}
