//! Ending a command and everything it started (the control channel's
//! `Kill`).
//!
//! A command runs in a process group of its own (with a terminal, in a
//! session of its own), so what it starts stays in its group unless it
//! moves itself out. What belongs to command `leader`: its process group,
//! its session, and every descendant of any of those by the parent links
//! of `/proc/<pid>/stat`. A process that moved into a group and session of
//! its own *and* whose parent had already ended before the kill (a daemon:
//! its parent is then the agent) is not found; everything else is.
//!
//! The processes found are stopped before they are killed (a stopped
//! process cannot fork, and a pending SIGSTOP makes a `fork` in progress
//! start over), and the scan is repeated until it finds no new process, so
//! a command that forks as fast as it can cannot outrun it. Then each one,
//! and the group, gets SIGKILL. Their parents are killed with them, so the
//! agent (PID 1) inherits them; it reaps them (a thread waits for each),
//! and no zombie is left.

use std::{collections::BTreeSet, time::Duration};

use super::sys;

const SIGKILL: i32 = 9;
const SIGSTOP: i32 = 19;
/// At most this many scans (each finds what the previous one stopped
/// forked meanwhile).
const MAX_ROUNDS: usize = 200;
/// How long the reaper waits for the killed processes to become the
/// agent's zombies.
const REAP_FOR: Duration = Duration::from_secs(10);

/// The fields of `/proc/<pid>/stat` this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pid: u32,
    /// `R`, `S`, `D`, `T`, `Z`, … .
    pub(crate) state: u8,
    pub(crate) ppid: u32,
    pub(crate) pgrp: u32,
    pub(crate) session: u32,
}

impl Stat {
    /// Whether it is stopped or has ended (it can start nothing more).
    fn is_still(&self) -> bool {
        matches!(self.state, b'T' | b't' | b'Z' | b'X')
    }
}

/// Parses `pid (comm) state ppid pgrp session …`. `comm` may hold spaces
/// and parentheses: it ends at the last `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let number = |field: &[u8]| std::str::from_utf8(field).ok()?.parse::<u32>().ok();
    let pid = number(text.get(..open)?.trim_ascii())?;
    let mut fields = text
        .get(close + 1..)?
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    Some(Stat {
        pid,
        state,
        ppid: number(fields.next()?)?,
        pgrp: number(fields.next()?)?,
        session: number(fields.next()?)?,
    })
}

/// Every process in `/proc` (those that end during the scan are missed,
/// which is what they would be anyway).
fn processes() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.parse::<u32>().ok()?;
            parse_stat(&std::fs::read(entry.path().join("stat")).ok()?)
        })
        .collect()
}

/// The processes of command `leader` among `all`: its group, its session
/// and the descendants of any of them; never PID 1 nor this process.
pub(crate) fn members(leader: u32, all: &[Stat]) -> BTreeSet<u32> {
    let mut found: BTreeSet<u32> = all
        .iter()
        .filter(|p| p.pid == leader || p.pgrp == leader || p.session == leader)
        .map(|p| p.pid)
        .collect();
    loop {
        let before = found.len();
        for p in all {
            if found.contains(&p.ppid) {
                found.insert(p.pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.remove(&1);
    found.remove(&std::process::id());
    found
}

/// Kills command `leader` and everything it started (see the module docs);
/// returns the pids killed. The leader itself is left for its own waiter
/// to reap; the others are reaped by a thread.
pub(crate) fn kill_tree(leader: u32) -> BTreeSet<u32> {
    if leader <= 1 {
        return BTreeSet::new();
    }
    let group = -i64::from(leader);
    let _ = sys::send_signal_raw(group, SIGSTOP);
    let mut stopped = BTreeSet::new();
    for round in 0..MAX_ROUNDS {
        let all = processes();
        let found = members(leader, &all);
        let new: Vec<u32> = found.difference(&stopped).copied().collect();
        for &pid in &new {
            let _ = sys::send_signal(pid, SIGSTOP);
        }
        stopped.extend(new.iter().copied());
        let settled = all
            .iter()
            .filter(|p| found.contains(&p.pid))
            .all(Stat::is_still);
        if new.is_empty() && settled {
            break;
        }
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for &pid in &stopped {
        let _ = sys::send_signal(pid, SIGKILL);
    }
    let _ = sys::send_signal_raw(group, SIGKILL);
    let orphans: Vec<u32> = stopped.iter().copied().filter(|&p| p != leader).collect();
    if !orphans.is_empty() {
        let _ = std::thread::Builder::new()
            .name("reap".into())
            .spawn(move || reap(orphans));
    }
    stopped
}

/// Reaps each of `pids` once it is this process's zombie (a killed
/// process becomes the agent's when its parent has ended too), for at
/// most [`REAP_FOR`]. Only these pids are waited for: the commands'
/// own waiters keep theirs.
fn reap(mut pids: Vec<u32>) {
    let deadline = std::time::Instant::now() + REAP_FOR;
    while !pids.is_empty() && std::time::Instant::now() < deadline {
        pids.retain(|&pid| !sys::reap_if_ended(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests;
