//! Removing what dead processes left: run directories nobody holds, and
//! half-made directories whose maker is gone.
//!
//! A directory being set up has a temporary name that records its maker's
//! pid ([`owned_name`]); a run directory has a lock file that every process
//! using it holds (flock, shared). The kernel drops a dead process's locks,
//! however it died (`kill -9`, or the VMM ending the process with `_exit`),
//! so "its lock can be taken exclusively" means "nobody uses it".

use std::{
    fs::{self, File},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::{Duration, SystemTime},
};

use rustix::fs::FlockOperation;

use super::run_dir::{LOCK, RUN_PREFIX, SETUP_PREFIX};

/// How old a half-made `.new-*` directory must be before a sweep removes it
/// even though its maker's pid lives (a pid reused by another process).
const STALE_SETUP: Duration = Duration::from_secs(3600);

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
        .is_ok_and(|file| {
            rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok()
        })
}

/// Removes what dead runs left in `parent`: a `run-*` directory whose lock
/// is free, and a `.new-*` directory whose maker is gone (and whose lock, if
/// made yet, is free) or that is older than an hour. A live run's directory
/// is never removed. Best effort: a directory that cannot be removed now is
/// left for a later sweep.
pub(crate) fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let lock = path.join(LOCK);
        let dead = if name.starts_with(RUN_PREFIX) {
            lock_is_free(&lock)
        } else if name.starts_with(SETUP_PREFIX) {
            let maker_dead =
                maker_is_gone(name, SETUP_PREFIX) && (!lock.exists() || lock_is_free(&lock));
            maker_dead || is_older_than(&entry, STALE_SETUP)
        } else {
            false
        };
        if dead {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

fn is_older_than(entry: &fs::DirEntry, age: Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|elapsed| elapsed > age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunDir;

    /// The pid of a process that has exited and been reaped.
    pub(crate) fn dead_pid() -> u32 {
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
    fn a_sweep_removes_only_runs_without_a_live_holder() {
        let parent = tempfile::tempdir().unwrap();
        let live = RunDir::create(parent.path()).unwrap();
        // A dead run: its lock file is there, but nobody holds it (as after
        // kill -9: the kernel drops a dead process's locks).
        let dead = parent.path().join("run-dead");
        fs::create_dir_all(dead.join("guest")).unwrap();
        fs::write(dead.join(LOCK), b"").unwrap();
        // A held run of "another process": a second open file description.
        let _held = crate::state::HeldRun::join(live.paths().dir()).unwrap();
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
        let mine = parent.path().join(owned_name(SETUP_PREFIX));
        fs::create_dir(&mine).unwrap();

        sweep(parent.path());
        assert!(!dead.exists(), "a dead run survived the sweep");
        assert!(live.paths().dir().is_dir(), "a live run was swept");
        assert!(young.exists() && !old.exists());
        assert!(!orphan.exists() && mine.exists());
    }
}
