//! VMs running in any process of this user, found by their ID: what
//! `monocore ps`, `monocore exec ID` and `monocore stop ID` use.
//!
//! A VM's ID is the name of its run directory without `run-` (see
//! `run_dir`). The process that spawned the VM writes `meta.json` there
//! (the helper's pid, the command, the start time); a run directory counts
//! as running while its lock is held, which is while its spawning process
//! or its VMM lives.

use std::{
    fs::{self, File},
    io::Read,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use super::{GuestCommand, GuestProcess, exec, run_dir};
use crate::{MonocoreError, MonocoreResult};

/// What the spawning process records about a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The VM helper's (the VMM's) pid.
    pub(crate) pid: u32,
    /// The command the VM was started with (`exec_path` and `args`).
    pub(crate) command: Vec<String>,
    /// When it was started, in seconds since the Unix epoch.
    pub(crate) started: u64,
}

/// The most `meta.json` that is read.
const MAX_META_LEN: u64 = 256 << 10;

/// Records `meta` in the run directory `dir`.
pub(crate) fn write_meta(dir: &Path, meta: &Meta) -> MonocoreResult<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    let temp = dir.join(".meta.json.tmp");
    fs::write(&temp, json)?;
    fs::rename(&temp, dir.join("meta.json"))?;
    Ok(())
}

/// A VM that is running, as found in a runs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningVm {
    id: String,
    dir: PathBuf,
    meta: Option<Meta>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether the run directory `dir` is held by a live process.
fn is_held(dir: &Path) -> bool {
    let Ok(file) = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("lock"))
    else {
        return false;
    };
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err()
}

/// The start time (in clock ticks after boot) of process `pid` while it
/// runs: `None` once it has ended (gone, or a zombie). Comparing start times
/// tells the process from a later one that got the same pid.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    // starttime is field 22; after comm, `state` was field 3.
    fields.nth(22 - 4)?.parse().ok()
}

fn read_meta(dir: &Path) -> Option<Meta> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("meta.json"))
        .ok()?;
    let mut json = Vec::new();
    file.take(MAX_META_LEN).read_to_end(&mut json).ok()?;
    serde_json::from_slice(&json).ok()
}

impl RunningVm {
    /// The running VMs in the default runs directory (`vms` in the
    /// [cache directory](crate::rootfs::cache_dir)), oldest first.
    pub fn list() -> MonocoreResult<Vec<Self>> {
        Self::list_in(&run_dir::default_parent())
    }

    /// The running VMs in `runs` (see [`SpawnOptions::runs_dir`]), oldest
    /// first. A missing directory holds none.
    ///
    /// [`SpawnOptions::runs_dir`]: super::SpawnOptions::runs_dir
    pub fn list_in(runs: &Path) -> MonocoreResult<Vec<Self>> {
        let entries = match fs::read_dir(runs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut vms: Vec<Self> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_prefix("run-")?.to_owned();
                let dir = e.path();
                is_held(&dir).then(|| Self {
                    id,
                    meta: read_meta(&dir),
                    dir,
                })
            })
            .collect();
        vms.sort_by_key(|vm| {
            (
                vm.meta.as_ref().map_or(u64::MAX, |m| m.started),
                vm.id.clone(),
            )
        });
        Ok(vms)
    }

    /// The running VM whose ID starts with `id` (at least 4 characters), in
    /// the default runs directory.
    pub fn find(id: &str) -> MonocoreResult<Self> {
        Self::find_in(&run_dir::default_parent(), id)
    }

    /// [`find`](Self::find) in `runs`.
    pub fn find_in(runs: &Path, id: &str) -> MonocoreResult<Self> {
        let unknown = |reason: &str| MonocoreError::NoSuchVm {
            id: id.to_owned(),
            reason: reason.to_owned(),
        };
        if id.len() < 4 {
            return Err(unknown("give at least 4 characters of the ID"));
        }
        let mut found: Vec<Self> = Self::list_in(runs)?
            .into_iter()
            .filter(|vm| vm.id.starts_with(id))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(unknown("no running VM has that ID (see `monocore ps`)")),
            _ => Err(unknown(
                "more than one running VM has an ID starting so; give more of it",
            )),
        }
    }

    /// Its ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its VMM's pid, if recorded.
    pub fn pid(&self) -> Option<u32> {
        self.meta.as_ref().map(|m| m.pid)
    }

    /// The command it was started with, if recorded.
    pub fn command(&self) -> &[String] {
        self.meta.as_ref().map_or(&[], |m| m.command.as_slice())
    }

    /// How long it has run, if recorded.
    pub fn uptime(&self) -> Option<Duration> {
        self.meta
            .as_ref()
            .map(|m| Duration::from_secs(now_secs().saturating_sub(m.started)))
    }

    fn connect(&self) -> MonocoreResult<std::os::unix::net::UnixStream> {
        let socket = exec::control_socket(&self.dir)?;
        let dir = self.dir.clone();
        exec::connect(
            &socket,
            Instant::now() + Duration::from_secs(300),
            &mut || is_held(&dir),
        )
    }

    /// Runs `command` in this VM (see [`VmHandle::exec`]).
    ///
    /// [`VmHandle::exec`]: super::VmHandle::exec
    pub fn exec(&self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        exec::start(self.connect()?, command)
    }

    /// Asks the VM's agent to end the VM, and waits (at most `timeout`) until
    /// its VMM process has ended (or, without a recorded pid, until no
    /// process holds its run directory).
    pub fn shutdown(&self, timeout: Duration) -> MonocoreResult<()> {
        let vmm = self.pid().and_then(|pid| Some((pid, process_start(pid)?)));
        exec::shutdown(self.connect()?)?;
        let deadline = Instant::now() + timeout;
        let running = || match vmm {
            Some((pid, start)) => process_start(pid) == Some(start),
            None => is_held(&self.dir),
        };
        while running() {
            if Instant::now() >= deadline {
                return Err(MonocoreError::Control {
                    message: format!("VM {} did not end within {timeout:?}", self.id),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::run_dir::RunDir;

    #[test]
    fn only_held_run_dirs_are_running_and_ids_are_found_by_prefix() {
        let runs = tempfile::tempdir().unwrap();
        assert!(
            RunningVm::list_in(&runs.path().join("none"))
                .unwrap()
                .is_empty()
        );
        let run = RunDir::create(runs.path()).unwrap();
        let dir = run.guest_root().parent().unwrap().to_path_buf();
        let meta = Meta {
            pid: 42,
            command: vec!["/bin/sh".into(), "-c".into(), "x".into()],
            started: now_secs(),
        };
        write_meta(&dir, &meta).unwrap();
        // A dead one: a lock nobody holds.
        let dead = runs.path().join("run-deadbeef");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("lock"), b"").unwrap();

        let vms = RunningVm::list_in(runs.path()).unwrap();
        assert_eq!(vms.len(), 1, "{vms:?}");
        let vm = &vms[0];
        assert_eq!(
            (vm.pid(), vm.command()),
            (Some(42), meta.command.as_slice())
        );
        assert!(vm.uptime().unwrap() < Duration::from_secs(60));
        let found = RunningVm::find_in(runs.path(), &vm.id()[..6]).unwrap();
        assert_eq!(found.id(), vm.id());
        for (id, says) in [
            ("ab", "at least 4"),
            ("dead", "no running VM"),
            ("zzzzzz", "no running VM"),
        ] {
            let err = RunningVm::find_in(runs.path(), id).unwrap_err().to_string();
            assert!(err.contains(says), "{id}: {err}");
        }
        drop(run);
        assert!(RunningVm::list_in(runs.path()).unwrap().is_empty());
    }

    #[test]
    fn a_process_is_running_until_it_ends_or_is_a_zombie() {
        let me = std::process::id();
        assert!(process_start(me).is_some());
        assert_eq!(process_start(me), process_start(me));
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped: a zombie, which no longer runs.
        while process_start(pid).is_some() {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert_eq!(process_start(pid), None);
    }
}
