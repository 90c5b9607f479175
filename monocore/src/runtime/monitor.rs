//! Watching a VM helper: the threads that read its private channel (status
//! lines and the VMM's log) and the guest console, and what they found.

use std::{
    collections::VecDeque,
    io::{self, BufRead, BufReader, Read, Write},
    process::Child,
    sync::{
        Arc, Mutex, MutexGuard,
        mpsc::{self, Receiver},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::protocol::{self, ExitSource, Failure, Status};
use crate::config::LogLevel;

/// At most this much console output is kept when it is captured.
const MAX_CONSOLE: usize = 16 << 20;
/// At most this many lines of the VMM's log are kept.
const LOG_TAIL: usize = 64;

/// What the reader threads found, shared with the [`VmHandle`](super::VmHandle).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// When the helper said it was entering the VM (its clock).
    pub(crate) entered_at: Option<SystemTime>,
    /// What the helper reported when it failed, if it did.
    pub(crate) failure: Option<Failure>,
    /// The time to live at which the helper ended the VM, if it did.
    pub(crate) expired: Option<Duration>,
    /// Where the VMM's exit code came from, once it said.
    pub(crate) exit_source: Option<ExitSource>,
    /// The VMM's last error record.
    pub(crate) last_vmm_error: Option<String>,
    /// The guest kernel's last console line the VMM logged.
    pub(crate) last_kernel_line: Option<String>,
    /// The last lines of the log.
    pub(crate) tail: VecDeque<String>,
    /// The captured console.
    pub(crate) console: Vec<u8>,
    /// Whether console output beyond [`MAX_CONSOLE`] was dropped.
    pub(crate) console_truncated: bool,
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic in a reader thread cannot leave `Shared` inconsistent: every
    // update is a single assignment.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The reader threads of one helper, and what they found.
#[derive(Debug)]
pub(crate) struct Watch {
    /// What they found.
    pub(crate) shared: Arc<Mutex<Shared>>,
    /// Says (or disconnects) when the log reader has finished.
    pub(crate) log_done: Receiver<()>,
    /// The same for the console reader, if the console is captured.
    pub(crate) console_done: Option<Receiver<()>>,
}

/// Starts reading `child`'s stderr (its private channel) and, if it is
/// piped, its stdout (the captured console); `forward` is the level at which
/// the VMM's log lines are passed on to this process's stderr.
pub(crate) fn watch(child: &mut Child, forward: LogLevel) -> io::Result<Watch> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (log_tx, log_done) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("monocore-vmm-log".into())
            .spawn(move || {
                read_log(stderr, &shared, forward);
                let _ = log_tx.send(());
            })?;
    }
    let console_done = match child.stdout.take() {
        Some(stdout) => {
            let (tx, rx) = mpsc::channel();
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("monocore-vmm-console".into())
                .spawn(move || {
                    read_console(stdout, &shared);
                    let _ = tx.send(());
                })?;
            Some(rx)
        }
        None => None,
    };
    Ok(Watch {
        shared,
        log_done,
        console_done,
    })
}

/// Reads the helper's private channel (status lines and the VMM's log)
/// until it ends, forwarding the log lines at or above `forward` to this
/// process's stderr. A line is at most 64 KiB; the tail keeps
/// [`LOG_TAIL`] lines.
pub(crate) fn read_log(stderr: impl Read, shared: &Mutex<Shared>, forward: LogLevel) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(64 << 10).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end_matches(['\n', '\r']);
        let mut state = lock(shared);
        if let Some(status) = protocol::parse_status(line) {
            match status {
                Status::Ready(nanos) => {
                    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
                    state.entered_at = UNIX_EPOCH.checked_add(Duration::from_nanos(nanos));
                }
                Status::Failed(error) => {
                    state.failure.get_or_insert(error);
                }
                Status::Expired(ttl) => state.expired = Some(ttl),
            }
            continue;
        }
        let mut show = forward != LogLevel::Off;
        if let Some(record) = protocol::parse_log_line(line) {
            show = (record.level as u32) <= (forward as u32);
            if let Some(source) = protocol::parse_exit_source(&record) {
                state.exit_source = Some(source);
            } else if record.target == "init_or_kernel" {
                state.last_kernel_line = Some(record.message.to_owned());
            } else if record.level == LogLevel::Error {
                state.last_vmm_error = Some(record.message.to_owned());
            }
        }
        if state.tail.len() >= LOG_TAIL {
            state.tail.pop_front();
        }
        state.tail.push_back(line.to_owned());
        drop(state);
        if show {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

/// Reads the guest console until it ends, keeping at most [`MAX_CONSOLE`]
/// bytes.
pub(crate) fn read_console(mut stdout: impl Read, shared: &Mutex<Shared>) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut state = lock(shared);
        let room = MAX_CONSOLE.saturating_sub(state.console.len());
        let chunk = buf.get(..n.min(room)).unwrap_or(&[]);
        state.console.extend_from_slice(chunk);
        if n > room {
            state.console_truncated = true;
        }
    }
}

#[cfg(test)]
mod tests;
