//! `MicroVm::spawn` from a crate that depends on monocore: from this test
//! harness, and from the crate's programs with threads, signal handlers and
//! a logger, or with their executable replaced on disk. Each test also
//! checks that no process is left behind.
//!
//! The tests run one at a time: each scans `/proc` for leftovers.

use std::{
    io::{Read, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use monocore::MonocoreError;
use monocore_downstream::{
    chain, children, echo, file_id, processes_running, reached_the_vmm, skip, spawn_to_start_enter,
    wait_for,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const SPAWNER: &str = env!("CARGO_BIN_EXE_spawner");
const START_WITH_LOGGER: &str = env!("CARGO_BIN_EXE_start-with-logger");
/// Far above a boot on the slowest host this runs on (~20 s under kvm_pvm).
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Nothing this test started still runs: no child, and no process running
/// `exe` (a VM helper of it).
fn assert_nothing_left(exe: (u64, u64)) {
    assert_eq!(children(), Vec::<u32>::new(), "children left behind");
    assert_eq!(
        processes_running(exe),
        Vec::<u32>::new(),
        "VM helpers left behind"
    );
}

fn this_test() -> (u64, u64) {
    file_id(Path::new("/proc/self/exe")).expect("this test's executable")
}

/// Waits for `child` to end (killing it after [`RUN_LIMIT`]); its exit
/// code, stdout and stderr.
fn finish(mut child: Child) -> (Option<i32>, String, String) {
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let ended = wait_for(RUN_LIMIT, || child.try_wait().ok().flatten().is_some());
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().expect("reap the program");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        ended,
        "the program did not end within {RUN_LIMIT:?}: {stdout}\n{stderr}"
    );
    (status.code(), stdout, stderr)
}

/// Runs `program` with `args` to its end.
fn run(program: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the program");
    finish(child)
}

#[test]
fn spawn_from_a_test_harness_runs_the_guest() {
    let _serial = serial();
    let (outcome, console) = match echo("hello from a downstream test") {
        Ok(run) => run,
        Err(e @ MonocoreError::Kernel { .. }) => {
            skip("spawn_from_a_test_harness_runs_the_guest", &e.to_string());
            return;
        }
        Err(e) => panic!("spawn failed: {}", chain(&e)),
    };
    let host = monocore::host::check();
    match &outcome {
        Ok(status) => {
            assert_eq!(status.code(), Some(0), "{console}");
            assert!(
                console.contains("hello from a downstream test"),
                "{console}"
            );
        }
        Err(e) if !host.can_boot() && reached_the_vmm(&outcome) => skip(
            "spawn_from_a_test_harness_runs_the_guest (partly)",
            &format!(
                "this host cannot boot ({:?}), so spawn ended in an error after reaching the \
                 VMM: {}",
                host.boot_blocker().map(ToString::to_string),
                chain(e)
            ),
        ),
        Err(e) => panic!("spawn did not run the guest: {}", chain(e)),
    }
    assert!(reached_the_vmm(&outcome));
    assert_nothing_left(this_test());
}

#[test]
fn the_test_harness_is_the_helper_and_never_runs_twice() {
    let _serial = serial();
    let (outcome, console) = spawn_to_start_enter().expect("spawn");
    assert!(
        matches!(
            outcome,
            Err(MonocoreError::Krun {
                call: "krun_start_enter",
                errno: libc::EINVAL
            })
        ),
        "{outcome:?}"
    );
    // A second run of this harness would print `running N tests`.
    assert_eq!(console, "");
    assert_nothing_left(this_test());
}

#[test]
fn a_program_with_threads_handlers_and_a_logger_spawns_and_main_runs_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let (code, out, err) = run(Path::new(SPAWNER), &[ran.to_str().unwrap(), "boot"]);
    if out.contains("no usable guest kernel") {
        skip(
            "a_program_with_threads_handlers_and_a_logger_spawns_and_main_runs_once",
            out.trim_end(),
        );
        return;
    }
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("reached the VMM: "), "{out}");
    if monocore::host::check().can_boot() {
        assert!(
            out.contains("Ok(VmExitStatus { code: Some(0)")
                && out.contains("hello from a program with threads"),
            "{out}"
        );
    }
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "main\n");
    // Its logger saw its own record; the helper's main never ran.
    assert!(err.contains("spawner log: "), "{err}");
    assert_nothing_left(file_id(Path::new(SPAWNER)).unwrap());
}

#[test]
fn a_program_whose_executable_was_replaced_on_disk_still_spawns_itself() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let exe = dir.path().join("spawner");
    std::fs::copy(SPAWNER, &exe).unwrap();
    let original = file_id(&exe).unwrap();
    let mut child = Command::new(&exe)
        .args([ran.to_str().unwrap(), "vmm", "wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || ran.exists()),
        "main never started"
    );
    // An upgrade: a new file renamed over the running one.
    let new = dir.path().join("spawner.new");
    std::fs::write(
        &new,
        format!("#!/bin/sh\necho replacement >> '{}'\n", ran.display()),
    )
    .unwrap();
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&new, &exe).unwrap();
    assert_ne!(file_id(&exe), Some(original));

    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout
            .contains("reached the VMM: Err(\"libkrun call krun_start_enter failed with errno 22"),
        "{stdout}"
    );
    // The running image was the helper: not the replacement, and not main.
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "main\n");
    assert_nothing_left(original);
}

#[test]
fn start_with_a_logger_set_returns_the_error_and_does_not_abort() {
    let _serial = serial();
    let (code, out, err) = run(Path::new(START_WITH_LOGGER), &[]);
    match code {
        Some(0) => {
            assert!(
                out.contains("start() returned: libkrun call krun_start_enter failed"),
                "{out}"
            );
        }
        Some(3) => skip(
            "start_with_a_logger_set_returns_the_error_and_does_not_abort",
            out.trim_end(),
        ),
        other => {
            panic!("exit {other:?} (an abort is a signal, no code)\nstdout: {out}\nstderr: {err}")
        }
    }
    assert_nothing_left(file_id(Path::new(START_WITH_LOGGER)).unwrap());
}
