//! Signals and cleanup of `monocore run`, with the real binary: each stop
//! signal at several delays, from 0 ms to after the VM helper (the VMM)
//! has started, sent to the process alone and to its process group (as a
//! terminal's Ctrl-C is); the sweep of what a `kill -9`ed run left; and
//! output to a closed or full stdout.
//!
//! Each case runs in a private cache directory (the compat kernel linked
//! in when this host has one) and a private working directory, which the
//! VM helper inherits: afterwards no process may have that directory, and
//! the cache may hold no run copy, VM run directory or staging directory.

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::{monocore_in, private_cache};
use monocore_suite::{may_boot, processes_in, wait_until_gone};

/// `monocore run -- /bin/sleep 30` (the default busybox root, so a private
/// copy and, in a fresh cache, a staging directory are made), in `cwd`, in
/// a process group of its own, with the four stop signals at their default
/// action whatever this test inherited (a shell starts background jobs
/// with SIGINT and SIGQUIT ignored, `nohup` SIGHUP: then a signal sent
/// before monocore's handlers are in place would be lost, which is the
/// shell's choice, not what these tests check).
fn start_run(cache: &Path, cwd: &Path) -> Child {
    let mut command = monocore_in(cache);
    command
        .current_dir(cwd)
        .args(["run", "--", "/bin/sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: between fork and exec the closure only calls `signal`, which
    // is async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(signal, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// Waits until a second process (the VM helper) runs in `cwd`.
fn wait_for_helper(cwd: &Path) {
    let start = Instant::now();
    while processes_in(cwd).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the VM helper never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a run left in the cache: run copies, VM run directories, staging
/// and set-up directories (the busybox template and the kernel stay).
fn leftovers(cache: &Path) -> Vec<String> {
    let mut left = Vec::new();
    for sub in ["runs", "vms"] {
        if let Ok(entries) = std::fs::read_dir(cache.join(sub)) {
            left.extend(entries.map(|e| format!("{sub}/{}", e.unwrap().file_name().display())));
        }
    }
    for entry in std::fs::read_dir(cache).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            left.push(name);
        }
    }
    left
}

/// When the signal is sent.
#[derive(Clone, Copy, Debug)]
enum When {
    /// This long after the process started.
    After(u64),
    /// Once the VM helper (the VMM) runs.
    HelperStarted,
    /// This long after the VM helper started (the VMM is booting the
    /// guest, or running it).
    HelperRunning(u64),
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Process,
    Group,
}

fn send(child: &Child, signal: i32, target: Target) {
    let pid = i32::try_from(child.id()).unwrap();
    let pid = match target {
        Target::Process => pid,
        Target::Group => -pid,
    };
    // SAFETY: a plain syscall, to our own child (or its process group),
    // which has not been reaped.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0);
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "?".to_owned(),
    }
}

/// One case of the matrix; returns its row.
fn case(signal: i32, when: When, target: Target) -> String {
    let cache = private_cache();
    let cwd = tempfile::tempdir().unwrap();
    let child = start_run(cache.path(), cwd.path());
    match when {
        When::After(ms) => std::thread::sleep(Duration::from_millis(ms)),
        When::HelperStarted => wait_for_helper(cwd.path()),
        When::HelperRunning(ms) => {
            wait_for_helper(cwd.path());
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    send(&child, signal, target);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let procs = wait_until_gone(cwd.path());
    let left = leftovers(cache.path());
    let row = format!(
        "signal {signal:>2} {when:>16} to the {target:<7} -> exit {:<18} processes left {procs:?}, cache left {left:?}",
        describe(out.status),
        when = format!("{when:?}"),
        target = format!("{target:?}"),
    );
    assert!(procs.is_empty(), "{row}: orphaned processes");
    assert!(left.is_empty(), "{row}: leftovers in the cache");
    assert!(!err.contains("panicked"), "{row}: {err}");
    let handled = out.status.code() == Some(128 + signal);
    // Before its handlers are in place (while the binary is loaded), the
    // signal's default action ends the process; it has made nothing then
    // (checked above), and a shell reports 128+N all the same. Once the VM
    // helper runs, the handlers are in place for sure.
    let early_death = out.status.signal() == Some(signal) && matches!(when, When::After(_));
    assert!(handled || early_death, "{row}: {err}");
    if handled {
        assert!(
            err.contains(&format!("monocore: interrupted (signal {signal})")),
            "{row}: {err}"
        );
    }
    row
}

/// Every delay and target for `signal`; prints the rows (`--nocapture`).
fn matrix(test: &str, signal: i32) {
    if !may_boot(test) {
        return;
    }
    let mut rows = Vec::new();
    for when in [
        When::After(0),
        When::After(10),
        When::After(30),
        When::After(100),
        When::HelperStarted,
        When::HelperRunning(1000),
    ] {
        for target in [Target::Process, Target::Group] {
            rows.push(case(signal, when, target));
        }
    }
    eprintln!("{}", rows.join("\n"));
}

#[test]
fn sigint_at_any_moment_exits_130_and_leaves_nothing() {
    matrix(
        "sigint_at_any_moment_exits_130_and_leaves_nothing",
        libc::SIGINT,
    );
}

#[test]
fn sigterm_at_any_moment_exits_143_and_leaves_nothing() {
    matrix(
        "sigterm_at_any_moment_exits_143_and_leaves_nothing",
        libc::SIGTERM,
    );
}

#[test]
fn sighup_at_any_moment_exits_129_and_leaves_nothing() {
    matrix(
        "sighup_at_any_moment_exits_129_and_leaves_nothing",
        libc::SIGHUP,
    );
}

#[test]
fn sigquit_at_any_moment_exits_131_and_leaves_nothing() {
    matrix(
        "sigquit_at_any_moment_exits_131_and_leaves_nothing",
        libc::SIGQUIT,
    );
}

/// The run directories (copies in `runs/`, VM directories in `vms/`).
fn run_dirs(cache: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["runs", "vms"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(cache.join(sub)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn the_next_run_sweeps_a_killed_runs_dirs_and_never_a_live_ones() {
    let test = "the_next_run_sweeps_a_killed_runs_dirs_and_never_a_live_ones";
    if !may_boot(test) {
        return;
    }
    let cache = private_cache();
    let (cwd_a, cwd_b, cwd_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // A: a live run.
    let a = start_run(cache.path(), cwd_a.path());
    wait_for_helper(cwd_a.path());
    let live = run_dirs(cache.path());
    assert_eq!(live.len(), 2, "{live:?}");
    // B: killed with SIGKILL; its helper ends on its own (its lifeline
    // closed), and its dirs stay behind.
    let mut b = start_run(cache.path(), cwd_b.path());
    wait_for_helper(cwd_b.path());
    send(&b, libc::SIGKILL, Target::Process);
    assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(wait_until_gone(cwd_b.path()).is_empty());
    let stale: Vec<PathBuf> = run_dirs(cache.path())
        .into_iter()
        .filter(|d| !live.contains(d))
        .collect();
    assert_eq!(stale.len(), 2, "B left no dirs to sweep: {stale:?}");
    // C: its start sweeps B's dirs, not A's.
    let c = start_run(cache.path(), cwd_c.path());
    wait_for_helper(cwd_c.path());
    for dir in &stale {
        assert!(!dir.exists(), "{} survived the sweep", dir.display());
    }
    for dir in &live {
        assert!(dir.exists(), "live {} was swept", dir.display());
    }
    for (child, cwd) in [(c, &cwd_c), (a, &cwd_a)] {
        send(&child, libc::SIGINT, Target::Process);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130));
        assert!(wait_until_gone(cwd.path()).is_empty());
    }
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}
