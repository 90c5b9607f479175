//! A VM's private run directory, and the sweep of ones whose owner died.
//!
//! ```text
//! <cache>/vms/run-<unpredictable suffix>/
//!     lock     held (flock, shared) by every process using the run
//!     guest/   the VM's private root filesystem (see `agent`)
//! ```
//!
//! A run directory is set up under a temporary `.new-<pid>-…` name (the pid
//! of the process setting it up), with its lock already held, and renamed
//! into place; so every `run-*` directory has a holder until its processes
//! are gone, however they end (`kill -9`, or the VMM ending the process with
//! `_exit`). [`RunDir::create`] first sweeps the parent: a `run-*` directory
//! whose lock can be taken exclusively has no live holder and is removed; a
//! `.new-*` directory whose pid is gone (and whose lock, if made yet, is
//! free), or that is older than an hour, is the remains of a crash during
//! set-up. A live run's directory is never removed by a sweep.

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

/// `<prefix><pid>-<unique suffix>`: a temporary name that records the pid
/// of the process that made it, so a sweep can tell a dead maker's remains
/// (see [`maker_is_gone`]).
pub(crate) fn owned_name(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        crate::util::unique_suffix()
    )
}

/// Whether the process that made `name` (an [`owned_name`] with `prefix`)
/// no longer exists. `false` for a name without a pid (made by an older
/// monocore) and for this process's own names.
pub(crate) fn maker_is_gone(name: &str, prefix: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether nobody holds a lock on `path` (a lock file, or a directory): it
/// can be locked exclusively now. `false` when it cannot be opened.
pub(crate) fn lock_is_free(path: &Path) -> bool {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .is_ok_and(|file| lock(&file, FlockOperation::NonBlockingLockExclusive).is_ok())
}

impl RunDir {
    /// Sweeps `parent`, then creates a new run directory in it. `parent` is
    /// created if needed and must be private to this user.
    pub(crate) fn create(parent: &Path) -> MonocoreResult<Self> {
        crate::rootfs::ensure_private_dir(parent)?;
        sweep(parent);
        let suffix = crate::util::unique_suffix();
        let staging = parent.join(owned_name(".new-"));
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
            if lock_is_free(&path.join("lock")) {
                let _ = fs::remove_dir_all(&path);
            }
        } else if name.starts_with(".new-") {
            // Its maker died during set-up (its lock, once made, is free).
            let lock_file = path.join("lock");
            let dead =
                maker_is_gone(name, ".new-") && (!lock_file.exists() || lock_is_free(&lock_file));
            let stale = dead
                || entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE_SETUP);
            if stale {
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

        // Set-up remains whose maker is gone go at once; those of a live
        // maker (this process) stay.
        let gone = dead_pid();
        let orphan = parent.path().join(format!(".new-{gone}-x"));
        fs::create_dir(&orphan).unwrap();
        let mine = parent.path().join(owned_name(".new-"));
        fs::create_dir(&mine).unwrap();

        sweep(parent.path());
        assert!(!dead.exists(), "a dead run survived the sweep");
        assert!(live.path().is_dir(), "a live run was swept");
        assert!(young.exists() && !old.exists());
        assert!(!orphan.exists() && mine.exists());
    }

    /// The pid of a process that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_maker_is_gone_only_when_its_pid_is() {
        assert!(maker_is_gone(&format!(".x-{}-abc", dead_pid()), ".x-"));
        assert!(!maker_is_gone(&owned_name(".x-"), ".x-"));
        assert!(!maker_is_gone(".x-1-abc", ".x-"), "pid 1 lives");
        assert!(
            !maker_is_gone(".x-abc", ".x-"),
            "no pid: not known to be gone"
        );
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
