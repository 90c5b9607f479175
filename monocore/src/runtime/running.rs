//! VMs running in any process of this user, found by their ID: what
//! `monocore ps`, `monocore exec ID` and `monocore stop ID` use.
//!
//! A VM's ID is the name of its run directory without `run-` (see
//! `run_dir`). The process that spawned the VM writes `meta.json` there
//! (the helper's pid, the command, the start time); a run directory counts
//! as running while its lock is held, which is while its spawning process
//! or its VMM lives.

use std::{
    ffi::{OsStr, OsString},
    fs,
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{GuestCommand, GuestContainer, GuestFiles, GuestProcess, control};
use crate::{
    error::{ControlError, MonocoreError, MonocoreResult, NoSuchVmReason},
    state::{self, Meta, RunPaths},
};

/// How long a command, a container request or a shutdown waits for the
/// agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// A VM that is running, as found in a runs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningVm {
    id: String,
    paths: RunPaths,
    meta: Option<Meta>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

impl RunningVm {
    /// The running VMs in the default runs directory (`vms` in the
    /// [cache directory](crate::state::cache_dir)), oldest first.
    pub fn list() -> MonocoreResult<Vec<Self>> {
        Self::list_in(&state::vms_dir())
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
                let paths = RunPaths::new(e.path());
                let id = paths.id()?.to_owned();
                paths.is_held().then(|| Self {
                    id,
                    meta: paths.read_meta(),
                    paths,
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
        Self::find_in(&state::vms_dir(), id)
    }

    /// [`find`](Self::find) in `runs`.
    pub fn find_in(runs: &Path, id: &str) -> MonocoreResult<Self> {
        let unknown = |reason| MonocoreError::NoSuchVm {
            id: id.to_owned(),
            reason,
        };
        if id.len() < 4 {
            return Err(unknown(NoSuchVmReason::TooShort));
        }
        let mut found: Vec<Self> = Self::list_in(runs)?
            .into_iter()
            .filter(|vm| vm.id.starts_with(id))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(unknown(NoSuchVmReason::NotRunning)),
            _ => Err(unknown(NoSuchVmReason::Ambiguous)),
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

    /// Connects to the VM's agent (waiting at most `timeout`; once it has
    /// booted, an agent that does not answer within
    /// [`control::bounds::ANSWER`] is `Unresponsive`). Returns the
    /// connection and the socket.
    pub(crate) fn connect(
        &self,
        timeout: Duration,
    ) -> MonocoreResult<(std::os::unix::net::UnixStream, std::path::PathBuf)> {
        let socket = self.paths.control_socket()?;
        let conn = control::connect(
            &socket,
            Instant::now() + timeout,
            &mut || self.paths.is_held(),
            &mut || super::guest_files::agent_ready(&self.paths),
            control::bounds::ANSWER,
        )?;
        Ok((conn, socket))
    }

    /// The files of this VM (see [`VmHandle::files`]).
    ///
    /// [`VmHandle::files`]: super::VmHandle::files
    pub fn files(&self) -> GuestFiles<'_> {
        GuestFiles::of_running(self, None)
    }

    /// The files of this VM's running container `container` (see
    /// [`VmHandle::files_in`]).
    ///
    /// [`VmHandle::files_in`]: super::VmHandle::files_in
    pub fn files_in(&self, container: impl Into<OsString>) -> GuestFiles<'_> {
        GuestFiles::of_running(self, Some(container.into()))
    }

    /// Runs `command` in this VM (see [`VmHandle::exec`]).
    ///
    /// [`VmHandle::exec`]: super::VmHandle::exec
    pub fn exec(&self, command: GuestCommand) -> MonocoreResult<GuestProcess> {
        let (conn, socket) = self.connect(CONNECT_TIMEOUT)?;
        control::start(conn, command, &socket)
    }

    /// Builds `container` in this VM and keeps it (see
    /// [`VmHandle::prepare_container`]).
    ///
    /// [`VmHandle::prepare_container`]: super::VmHandle::prepare_container
    pub fn prepare_container(&self, container: &GuestContainer) -> MonocoreResult<()> {
        control::prepare(self.connect(CONNECT_TIMEOUT)?.0, container)
    }

    /// Forgets a container [`prepare_container`](Self::prepare_container)
    /// made (see [`VmHandle::discard_container`]).
    ///
    /// [`VmHandle::discard_container`]: super::VmHandle::discard_container
    pub fn discard_container(&self, name: impl AsRef<OsStr>) -> MonocoreResult<()> {
        control::discard(self.connect(CONNECT_TIMEOUT)?.0, name.as_ref())
    }

    /// Asks the VM's agent to end the VM, and waits (at most `timeout`) until
    /// its VMM process has ended (or, without a recorded pid, until no
    /// process holds its run directory).
    pub fn shutdown(&self, timeout: Duration) -> MonocoreResult<()> {
        let vmm = self.pid().and_then(|pid| Some((pid, process_start(pid)?)));
        control::shutdown(self.connect(CONNECT_TIMEOUT)?.0)?;
        let deadline = Instant::now() + timeout;
        let running = || match vmm {
            Some((pid, start)) => process_start(pid) == Some(start),
            None => self.paths.is_held(),
        };
        while running() {
            if Instant::now() >= deadline {
                return Err(ControlError::ShutdownTimeout {
                    id: self.id.clone(),
                    timeout,
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunDir;

    #[test]
    fn only_held_run_dirs_are_running_and_ids_are_found_by_prefix() {
        let runs = tempfile::tempdir().unwrap();
        assert!(
            RunningVm::list_in(&runs.path().join("none"))
                .unwrap()
                .is_empty()
        );
        let run = RunDir::create(runs.path()).unwrap();
        let meta = Meta {
            pid: 42,
            command: vec!["/bin/sh".into(), "-c".into(), "x".into()],
            started: now_secs(),
        };
        run.paths().write_meta(&meta).unwrap();
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
