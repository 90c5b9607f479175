//! Every command bounded in time, with real boots: a command's timeout
//! kills it with what it started, an abort ends a blocked read at once, a
//! frozen VM is found within the deadline, and a VM ends at its time to
//! live. They run where `tests/boot.rs` runs (see there), and check that
//! nothing is left: no guest process, no host process, no run dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    error::ControlError,
    vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions, VmHandle},
};
use monocore_suite::{assert_nothing_left, busybox_rootfs, may_boot};

/// An idle VM (no main command) on a busybox root with `options`, or
/// `None` (skipped).
fn idle_vm(
    test: &str,
    runs: &Path,
    options: SpawnOptions,
) -> Option<(tempfile::TempDir, VmHandle)> {
    if !may_boot(test) {
        return None;
    }
    let root = busybox_rootfs().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 128)).unwrap();
    let handle = vm
        .spawn_with(&options.capture_console(true).runs_dir(runs).idle(true))
        .unwrap();
    Some((root, handle))
}

fn piped(command: GuestCommand) -> GuestCommand {
    command
        .stdout(GuestOutput::Piped)
        .stderr(GuestOutput::Piped)
}

/// The guest's processes named `name` (zombies too), from `/proc/*/stat`,
/// as `pid state` pairs.
fn guest_processes(vm: &mut VmHandle, name: &str) -> Vec<String> {
    let out = vm
        .exec(piped(
            GuestCommand::new("/bin/sh").args(["-c", "cat /proc/[0-9]*/stat 2>/dev/null"]),
        ))
        .unwrap()
        .wait_with_output()
        .unwrap();
    let comm = format!("({name})");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(comm.as_str()))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Waits (a few seconds at most) until the guest has no process named
/// `name`, not even a zombie; fails the test with those left.
fn assert_none_left(vm: &mut VmHandle, name: &str) {
    let started = Instant::now();
    loop {
        let left = guest_processes(vm, name);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "guest processes `{name}` left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn timeouts_kill_what_commands_started_and_streams_stay_live() {
    let runs = tempfile::tempdir().unwrap();
    let test = "timeouts_kill_what_commands_started_and_streams_stay_live";
    let Some((_root, mut vm)) = idle_vm(test, runs.path(), SpawnOptions::new()) else {
        return;
    };
    let pid = vm.pid();
    let boot = Instant::now();
    vm.exec(GuestCommand::new("/bin/true"))
        .unwrap()
        .wait()
        .unwrap();
    println!("boot and first exec: {:?}", boot.elapsed());

    // A silent command longer than a ping's round (2 s + 5 s) runs on.
    let mut silent = vm.exec(GuestCommand::new("/bin/sleep").arg("9")).unwrap();
    let silent_since = Instant::now();

    // A shell that ignores SIGTERM, with a child in the background: both
    // killed at the timeout, its output until then kept.
    let timeout = Duration::from_secs(3);
    let stubborn = vm
        .exec(piped(
            GuestCommand::new("/bin/sh")
                .args([
                    "-c",
                    "trap '' TERM; echo started; sleep 300 & sleep 301; echo never",
                ])
                .timeout(timeout),
        ))
        .unwrap();
    let started = Instant::now();
    let result = stubborn.wait_with_output();
    let took = started.elapsed();
    println!("timeout of {timeout:?}: {took:?}");
    match result {
        Err(MonocoreError::CommandTimedOut {
            timeout: t,
            confirmed,
            stdout,
            ..
        }) => {
            assert_eq!(t, timeout);
            assert!(confirmed, "the agent did not confirm the kill");
            assert_eq!(stdout, b"started\n");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "{took:?}"
    );
    assert_none_left(&mut vm, "sleep");

    // With a timeout, output still streams as it comes: the first line
    // arrives while the command runs.
    let mut streaming = vm
        .exec(
            GuestCommand::new("/bin/sh")
                .args(["-c", "echo first; sleep 4; echo second"])
                .stdout(GuestOutput::Piped)
                .timeout(Duration::from_secs(120)),
        )
        .unwrap();
    let started = Instant::now();
    let mut lines = BufReader::new(streaming.take_stdout().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    println!("first line with a timeout: {:?}", started.elapsed());
    assert_eq!(first, "first\n");
    assert_eq!(streaming.try_wait().unwrap(), None, "it should still run");
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert_eq!(streaming.wait().unwrap().code(), Some(0));

    let status = silent.wait().unwrap();
    println!("silent sleep 9: {:?}", silent_since.elapsed());
    assert_eq!(status.code(), Some(0));

    // An abort from another thread ends a blocked read at once, and kills.
    let mut blocked = vm
        .exec(piped(
            GuestCommand::new("/bin/sh").args(["-c", "sleep 302 & sleep 303"]),
        ))
        .unwrap();
    let mut stdout = blocked.take_stdout().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let n = stdout.read(&mut buf).unwrap();
        (n, Instant::now())
    });
    std::thread::sleep(Duration::from_secs(1));
    let aborted = Instant::now();
    blocked.signaller().abort();
    let (n, at) = reader.join().unwrap();
    println!("abort to end of stream: {:?}", at.duration_since(aborted));
    assert_eq!(n, 0);
    assert!(at.duration_since(aborted) < Duration::from_millis(500));
    assert_eq!(blocked.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_none_left(&mut vm, "sleep");

    vm.shutdown().unwrap();
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

#[test]
fn a_frozen_vm_is_found_unresponsive_within_the_deadline() {
    let runs = tempfile::tempdir().unwrap();
    let test = "a_frozen_vm_is_found_unresponsive_within_the_deadline";
    let Some((_root, mut vm)) = idle_vm(test, runs.path(), SpawnOptions::new()) else {
        return;
    };
    let pid = vm.pid();
    vm.exec(GuestCommand::new("/bin/true"))
        .unwrap()
        .wait()
        .unwrap();
    let mut running = vm
        .exec(
            GuestCommand::new("/bin/sleep")
                .arg("300")
                .stdout(GuestOutput::Piped),
        )
        .unwrap();
    let mut stdout = running.take_stdout().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        Instant::now()
    });
    let mut timed = vm
        .exec(
            GuestCommand::new("/bin/sleep")
                .arg("301")
                .timeout(Duration::from_secs(3)),
        )
        .unwrap();

    // Linux ignores SIGSTOP sent to PID 1 (the agent) from inside the
    // guest: stop the VMM process instead (its vCPUs and vsock device).
    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
    let frozen = Instant::now();

    // A running command: Ping after 2 s of silence, no Pong within 5 s.
    let lost = running.wait();
    let took = frozen.elapsed();
    println!("running command on a frozen VM: {lost:?} after {took:?}");
    assert!(
        matches!(
            lost,
            Err(MonocoreError::Control(ControlError::Unresponsive { .. }))
        ),
        "{lost:?}"
    );
    assert!(took < Duration::from_secs(12), "{took:?}");
    // Its stream ended too.
    let ended = reader.join().unwrap();
    assert!(ended.duration_since(frozen) < Duration::from_secs(12));

    // A timeout the agent cannot confirm: given up after its grace.
    let result = timed.wait();
    let took = frozen.elapsed();
    println!("timed command on a frozen VM: {result:?} after {took:?}");
    assert!(
        matches!(
            result,
            Err(MonocoreError::CommandTimedOut {
                confirmed: false,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(14), "{took:?}");

    // A new command: its Hello goes unanswered.
    let asked = Instant::now();
    let refused = vm.exec(GuestCommand::new("/bin/true"));
    let took = asked.elapsed();
    println!(
        "exec on a frozen VM: {:?} after {took:?}",
        refused.as_ref().err()
    );
    assert!(
        matches!(
            refused,
            Err(MonocoreError::Control(ControlError::Unresponsive {
                request: "Hello",
                ..
            }))
        ),
        "{:?}",
        refused.err()
    );
    assert!(took < Duration::from_secs(20), "{took:?}");

    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGCONT) }, 0);
    drop((running, timed));
    vm.kill().unwrap();
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

#[test]
fn a_vm_ends_at_its_time_to_live() {
    let runs = tempfile::tempdir().unwrap();
    let test = "a_vm_ends_at_its_time_to_live";
    let ttl = Duration::from_secs(15);
    let spawned = Instant::now();
    let Some((_root, mut vm)) = idle_vm(test, runs.path(), SpawnOptions::new().time_to_live(ttl))
    else {
        return;
    };
    let pid = vm.pid();
    let result = vm.wait_timeout(ttl + Duration::from_secs(60));
    let took = spawned.elapsed();
    println!("VM with a time to live of {ttl:?}: {result:?} after {took:?}");
    match result {
        Err(MonocoreError::VmExpired { time_to_live }) => assert_eq!(time_to_live, ttl),
        other => panic!("{other:?}"),
    }
    assert!(
        took >= ttl && took < ttl + Duration::from_secs(3),
        "{took:?}"
    );
    drop(vm);
    assert_nothing_left(pid, runs.path());
}
