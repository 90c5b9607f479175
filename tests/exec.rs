//! Commands run in a running VM over the guest agent's control channel
//! (`VmHandle::exec`), with real boots. They run where `tests/boot.rs` runs
//! (see there), and check that nothing is left: no process, no run dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{
    io::{Read, Write},
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    vm::{
        GuestCommand, GuestOutput, GuestStep, MicroVm, MicroVmConfig, RunningVm, SpawnOptions,
        VmHandle,
    },
};
use monocore_suite::{assert_nothing_left, busybox_rootfs, may_boot, sh_config};

/// An idle VM (no main command) on a busybox root, or `None` (skipped).
fn idle_vm(test: &str, runs: &Path) -> Option<(tempfile::TempDir, VmHandle)> {
    if !may_boot(test) {
        return None;
    }
    let root = busybox_rootfs().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 128)).unwrap();
    let handle = vm
        .spawn_with(
            &SpawnOptions::new()
                .capture_console(true)
                .runs_dir(runs)
                .idle(true),
        )
        .unwrap();
    Some((root, handle))
}

fn piped(command: GuestCommand) -> GuestCommand {
    command
        .stdout(GuestOutput::Piped)
        .stderr(GuestOutput::Piped)
}

#[test]
fn exec_runs_more_commands_in_a_running_vm() {
    let runs = tempfile::tempdir().unwrap();
    let Some((_root, mut vm)) = idle_vm("exec_runs_more_commands_in_a_running_vm", runs.path())
    else {
        return;
    };
    let pid = vm.pid();

    // The first exec waits for the boot; later ones find the agent at once.
    let started = Instant::now();
    let out = vm
        .exec(piped(GuestCommand::new("/bin/echo").arg("hello \"guest\"")))
        .unwrap()
        .wait_with_output()
        .unwrap();
    println!("first exec (boot included): {:?}", started.elapsed());
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"hello \"guest\"\n"[..])
    );

    // A second command, in the same VM: streamed output, stderr apart, the
    // exit code, the environment and working directory given.
    let started = Instant::now();
    let mut process = vm
        .exec(piped(
            GuestCommand::new("sh")
                .args(["-c", "echo out-$NAME; echo err >&2; pwd; exit 3"])
                .env("NAME", "x y")
                .env("PATH", "/bin")
                .current_dir("/tmp"),
        ))
        .unwrap();
    let mut stdout = process.take_stdout().unwrap();
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).unwrap();
    println!(
        "exec to first output in a running VM: {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let mut stderr = Vec::new();
    process
        .take_stderr()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    assert_eq!(process.wait().unwrap().code(), Some(3));
    assert_eq!([&first[..], &rest].concat(), b"out-x y\n/tmp\n");
    assert_eq!(stderr, b"err\n");

    // Input, and its end.
    let mut cat = vm.exec(piped(GuestCommand::new("/bin/cat"))).unwrap();
    let mut stdin = cat.take_stdin().unwrap();
    stdin.write_all(b"line one\nline two\n").unwrap();
    drop(stdin);
    let out = cat.wait_with_output().unwrap();
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"line one\nline two\n"[..])
    );

    // A program that is not there is a typed error.
    match vm.exec(GuestCommand::new("/no/such/program")) {
        Err(MonocoreError::GuestSetup {
            step: GuestStep::Exec,
            errno,
            ..
        }) => {
            assert_eq!(errno, libc::ENOENT)
        }
        other => panic!("{other:?}"),
    }

    let status = vm.shutdown().unwrap();
    println!("VM after shutdown: {status}");
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

#[test]
fn killed_and_timed_out_commands_leave_nothing_behind() {
    let runs = tempfile::tempdir().unwrap();
    let Some((_root, mut vm)) = idle_vm(
        "killed_and_timed_out_commands_leave_nothing_behind",
        runs.path(),
    ) else {
        return;
    };
    let pid = vm.pid();
    let mut sleeper = vm.exec(GuestCommand::new("/bin/sleep").arg("600")).unwrap();
    assert_eq!(
        sleeper.wait_timeout(Duration::from_millis(500)).unwrap(),
        None
    );
    sleeper.kill().unwrap();
    let status = sleeper.wait().unwrap();
    assert_eq!((status.code(), status.signal()), (None, Some(9)));

    // A process whose handle is dropped is killed in the guest.
    let dropped = vm.exec(GuestCommand::new("/bin/sleep").arg("601")).unwrap();
    let guest_pid = dropped.id();
    drop(dropped);
    let ps = vm
        .exec(piped(GuestCommand::new("/bin/ps")))
        .unwrap()
        .wait_with_output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !listing.lines().any(|l| l.contains("sleep 60")),
        "a sleeper survived (pid {guest_pid}):\n{listing}"
    );

    // A signal reaches the command.
    let term = vm.exec(GuestCommand::new("/bin/sleep").arg("602")).unwrap();
    term.signal(libc::SIGTERM).unwrap();
    let mut term = term;
    assert_eq!(term.wait().unwrap().signal(), Some(libc::SIGTERM));

    // Killing the VM with a command still running ends it all.
    let _running = vm.exec(GuestCommand::new("/bin/sleep").arg("603")).unwrap();
    vm.kill().unwrap();
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

#[test]
fn a_command_with_a_terminal_is_interactive() {
    let runs = tempfile::tempdir().unwrap();
    let Some((_root, mut vm)) = idle_vm("a_command_with_a_terminal_is_interactive", runs.path())
    else {
        return;
    };
    let pid = vm.pid();
    let mut shell = vm
        .exec(
            GuestCommand::new("/bin/sh")
                .tty(24, 80)
                .stdout(GuestOutput::Piped),
        )
        .unwrap();
    let mut stdin = shell.take_stdin().unwrap();
    let mut stdout = shell.take_stdout().unwrap();
    stdin
        .write_all(b"stty size; tty; echo hi-$((6*7))\n")
        .unwrap();
    stdin.write_all(b"exit 4\n").unwrap();
    let mut screen = Vec::new();
    stdout.read_to_end(&mut screen).unwrap();
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.contains("24 80"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("hi-42"), "{screen}");
    assert_eq!(shell.wait().unwrap().code(), Some(4));
    drop(stdin);
    vm.shutdown().unwrap();
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

#[test]
fn a_kept_vm_outlives_its_command_until_shutdown() {
    if !may_boot("a_kept_vm_outlives_its_command_until_shutdown") {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let root = busybox_rootfs().unwrap();
    let vm = MicroVm::from_config(sh_config(root.path(), "echo main-done; exit 5")).unwrap();
    let mut handle = vm
        .spawn_with(
            &SpawnOptions::new()
                .capture_console(true)
                .runs_dir(runs.path())
                .keep(true),
        )
        .unwrap();
    let pid = handle.pid();
    // Wait until the main command has run, then use the VM further.
    let started = Instant::now();
    while !String::from_utf8_lossy(&handle.console_output()).contains("main-done") {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the main command never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = handle
        .exec(piped(GuestCommand::new("/bin/echo").arg("still-up")))
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(out.stdout, b"still-up\n");

    // Another process would find it by its ID, run commands in it and stop
    // it, the way `monocore exec ID` and `monocore stop ID` do.
    let id = handle.id().unwrap();
    let listed = RunningVm::list_in(runs.path()).unwrap();
    assert_eq!(
        listed.iter().map(RunningVm::id).collect::<Vec<_>>(),
        [id.as_str()]
    );
    let found = RunningVm::find_in(runs.path(), &id[..6]).unwrap();
    assert_eq!(found.pid(), Some(pid));
    assert_eq!(found.command(), ["/bin/sh", "-c", "echo main-done; exit 5"]);
    let out = found
        .exec(piped(GuestCommand::new("/bin/echo").arg("from-elsewhere")))
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(out.stdout, b"from-elsewhere\n");
    found.shutdown(Duration::from_secs(60)).unwrap();
    // The VM ended with its main command's code.
    assert_eq!(handle.wait().unwrap().code(), Some(5));
    assert!(RunningVm::list_in(runs.path()).unwrap().is_empty());
    drop(handle);
    assert_nothing_left(pid, runs.path());
}
