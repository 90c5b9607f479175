//! Containers inside one running VM, as a pod's app containers run in its
//! VM (`GuestCommand::in_new_container`, `in_container`), with one real
//! boot. The VM's root holds two container roots (busybox trees, each with
//! a marker file), the pod's volumes and files to bind, and symlinks
//! planted in a container root that point at its top and above it. Runs
//! where `tests/exec.rs` runs (see there), and checks that nothing is left.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code may panic

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    vm::{
        GuestCommand, GuestContainer, GuestOutput, GuestOutputs, GuestProcess, GuestStep,
        LinuxRlimitResource, MicroVm, MicroVmConfig, SpawnOptions, VmHandle,
    },
};
use monocore_suite::{assert_nothing_left, busybox_rootfs, may_boot, populate_busybox_rootfs};

const TEST: &str = "containers_in_one_vm_see_their_own_roots_and_share_the_pod_s_volumes";

/// The VM's root: `/pod/c1` and `/pod/c2` (container roots with markers),
/// `/pod/vol` (an emptyDir), `/pod/ro/secret` (a read-only volume),
/// `/pod/termination-log` (a file to bind), and in c1 `escape -> /` and
/// `up -> ../..`.
fn pod_root() -> tempfile::TempDir {
    let root = busybox_rootfs().unwrap();
    let pod = root.path().join("pod");
    for name in ["c1", "c2"] {
        let dir = pod.join(name);
        fs::create_dir_all(&dir).unwrap();
        populate_busybox_rootfs(&dir).unwrap();
        fs::write(dir.join(format!("{name}-marker")), name).unwrap();
    }
    fs::create_dir_all(pod.join("vol")).unwrap();
    // Writable by the test's unprivileged user, as an emptyDir is.
    fs::set_permissions(pod.join("vol"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::create_dir_all(pod.join("ro")).unwrap();
    fs::write(pod.join("ro/secret"), "token\n").unwrap();
    fs::write(pod.join("termination-log"), "").unwrap();
    std::os::unix::fs::symlink("/", pod.join("c1/escape")).unwrap();
    std::os::unix::fs::symlink("../..", pod.join("c1/up")).unwrap();
    root
}

fn piped(command: GuestCommand) -> GuestCommand {
    command
        .stdout(GuestOutput::Piped)
        .stderr(GuestOutput::Piped)
}

fn sh(script: &str) -> GuestCommand {
    piped(GuestCommand::new("/bin/sh").args(["-c", script]))
}

fn run(vm: &mut VmHandle, command: GuestCommand) -> (Option<i32>, String) {
    let out: GuestOutputs = vm.exec(command).unwrap().wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// Starts a long-running container command whose script prints its
/// findings, then `ready`, then sleeps: returns the process and what it
/// printed.
fn start_until_ready(vm: &mut VmHandle, command: GuestCommand) -> (GuestProcess, String) {
    let mut process = vm.exec(command).unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    let mut seen = String::new();
    while !seen.ends_with("ready\n") {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "ended early:\n{seen}"
        );
        seen.push_str(&line);
    }
    // Nothing more is printed; the rest of the output is discarded.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (process, seen)
}

/// c1: read-only root, the hostname, every kind of bind, and two binds
/// whose targets go through the planted symlinks.
fn c1() -> GuestContainer {
    GuestContainer::new("c1", "/pod/c1")
        .readonly_root(true)
        .hostname("pod-host")
        .bind("/pod/vol", "/vol", false)
        .bind("/pod/ro", "/ro", true)
        .bind("/pod/termination-log", "/dev/termination-log", false)
        .bind("/pod/vol", "/escape/planted-dir", false)
        .bind("/pod/termination-log", "/up/planted-file", false)
}

const C1_SCRIPT: &str = "\
exec 2>&1
echo marker=$(cat /c1-marker)
[ -e /c2-marker ] && echo sees-c2
[ -e /pod ] && echo sees-vm-root
grep -q '^proc /proc proc ' /proc/mounts && echo own-proc
grep -q ' /dev/pts devpts ' /proc/mounts && echo own-devpts
[ -c /dev/null ] && echo null-ok
echo hostname=$(hostname)
touch /ro/new 2>&1; echo secret=$(cat /ro/secret)
echo x > /root-file 2>&1
echo from-c1 > /vol/from-c1
echo shm-c1 > /dev/shm/from-c1
echo c1-dev > /dev/c1-own
echo guest-wrote > /dev/termination-log
cat /proc/mounts
echo ready
exec sleep 600";

const C2_SCRIPT: &str = "echo ready; exec sleep 600";

#[test]
fn containers_in_one_vm_see_their_own_roots_and_share_the_pod_s_volumes() {
    if !may_boot(TEST) {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let root = pod_root();
    let pod = root.path().join("pod");
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 256)).unwrap();
    let mut vm = vm
        .spawn_with(
            &SpawnOptions::new()
                .capture_console(true)
                .runs_dir(runs.path())
                .idle(true),
        )
        .unwrap();
    let pid = vm.pid();
    let started = Instant::now();
    let (code, _) = run(&mut vm, sh("true"));
    assert_eq!(code, Some(0));
    println!("boot and first exec: {:?}", started.elapsed());

    let started = Instant::now();
    let (mut first, seen) = start_until_ready(&mut vm, sh(C1_SCRIPT).in_new_container(c1()));
    println!("new container to its first output: {:?}", started.elapsed());
    own_view_of_c1(&seen);
    binds_reach_the_host(&mut vm, &pod);

    let (mut second, _) = start_until_ready(
        &mut vm,
        sh(C2_SCRIPT)
            .in_new_container(GuestContainer::new("c2", "/pod/c2").bind("/pod/vol", "/vol", false)),
    );
    c2_shares_the_pod_s_volumes(&mut vm);
    joined_commands_run_as_asked(&mut vm);
    names_are_unique_and_ended_containers_gone(&mut vm, &mut first, &mut second);
    a_prepared_container_outlives_its_commands_until_discarded(&mut vm);
    nothing_escaped(&mut vm, root.path());
    timings(&mut vm);

    let status = vm.shutdown().unwrap();
    println!("VM after shutdown: {status}");
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

fn own_view_of_c1(seen: &str) {
    for expected in [
        "marker=c1",
        "own-proc",
        "own-devpts",
        "null-ok",
        "hostname=pod-host",
        "secret=token",
    ] {
        assert!(
            seen.lines().any(|l| l == expected),
            "{expected} in:\n{seen}"
        );
    }
    assert!(!seen.contains("sees-"), "{seen}");
    // The read-only bind and the read-only root refuse writes (EROFS).
    assert!(
        seen.contains("touch: /ro/new: Read-only file system"),
        "{seen}"
    );
    assert!(seen.contains("/root-file: Read-only file system"), "{seen}");
}

/// A guest write through a file bind reaches the host file; a host update
/// of it is read in the guest.
fn binds_reach_the_host(vm: &mut VmHandle, pod: &Path) {
    let log = pod.join("termination-log");
    assert_eq!(fs::read_to_string(&log).unwrap(), "guest-wrote\n");
    assert_eq!(
        fs::read_to_string(pod.join("vol/from-c1")).unwrap(),
        "from-c1\n"
    );
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    file.write_all(b"host-updated\n").unwrap();
    drop(file);
    let started = Instant::now();
    loop {
        let (_, text) = run(vm, sh("cat /dev/termination-log").in_container("c1"));
        if text == "host-updated\n" {
            println!(
                "a host update seen in the guest after {:?}",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {text:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn c2_shares_the_pod_s_volumes(vm: &mut VmHandle) {
    let (code, text) = run(
        vm,
        sh(
            "cat /c2-marker; [ -e /c1-marker ] && echo sees-c1; [ -e /dev/c1-own ] && echo sees-c1-dev; \
            cat /vol/from-c1 /dev/shm/from-c1; \
            echo from-c2 > /vol/from-c2; echo shm-c2 > /dev/shm/from-c2; exit 7",
        )
        .in_container("c2"),
    );
    assert_eq!((code, text.as_str()), (Some(7), "c2from-c1\nshm-c1\n"));
    let (code, text) = run(
        vm,
        sh("cat /c1-marker /vol/from-c2 /dev/shm/from-c2").in_container("c1"),
    );
    assert_eq!((code, text.as_str()), (Some(0), "c1from-c2\nshm-c2\n"));
    // A terminal in a container: its own devpts.
    let mut shell = vm
        .exec(
            GuestCommand::new("/bin/sh")
                .tty(24, 80)
                .stdout(GuestOutput::Piped)
                .in_container("c2"),
        )
        .unwrap();
    let mut stdin = shell.take_stdin().unwrap();
    stdin
        .write_all(b"tty; cat /c2-marker; echo; exit 3\n")
        .unwrap();
    let mut screen = String::new();
    shell
        .take_stdout()
        .unwrap()
        .read_to_string(&mut screen)
        .unwrap();
    assert_eq!(shell.wait().unwrap().code(), Some(3));
    assert!(
        screen.contains("/dev/pts/0") && screen.contains("c2\r\n"),
        "{screen}"
    );
}

fn joined_commands_run_as_asked(vm: &mut VmHandle) {
    let (code, text) = run(
        vm,
        sh("ulimit -n; ulimit -H -n; id -u; id -g; id -G; touch /vol/by-user && ls -n /vol/by-user")
            .in_container("c1")
            .rlimit(LinuxRlimitResource::RLIMIT_NOFILE, 123, 456)
            .user(1234, 2345, [3456]),
    );
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..5],
        ["123", "456", "1234", "2345", "2345 3456"],
        "{text}"
    );
    assert!(
        lines[5].contains(" 1234 ") && lines[5].contains(" 2345 "),
        "{text}"
    );
}

fn names_are_unique_and_ended_containers_gone(
    vm: &mut VmHandle,
    first: &mut GuestProcess,
    second: &mut GuestProcess,
) {
    match vm.exec(GuestCommand::new("true").in_new_container(GuestContainer::new("c2", "/pod/c2")))
    {
        Err(MonocoreError::GuestSetup {
            step: GuestStep::Container,
            errno,
            detail,
        }) => {
            assert_eq!(errno, libc::EEXIST, "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Killing c1's process ends c1, not c2 or the VM.
    first.kill().unwrap();
    let status = first.wait().unwrap();
    assert_eq!((status.code(), status.signal()), (None, Some(9)));
    match vm.exec(GuestCommand::new("true").in_container("c1")) {
        Err(MonocoreError::GuestSetup {
            step: GuestStep::Container,
            errno,
            detail,
        }) => {
            assert_eq!(errno, libc::ENOENT, "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(second.try_wait().unwrap().is_none());
    let (code, text) = run(vm, sh("cat /c2-marker").in_container("c2"));
    assert_eq!((code, text.as_str()), (Some(0), "c2"));
    // The name is free again.
    let again = GuestContainer::new("c1", "/pod/c1");
    let (code, text) = run(vm, sh("cat /c1-marker; exit 4").in_new_container(again));
    assert_eq!((code, text.as_str()), (Some(4), "c1"));
    second.kill().unwrap();
    assert_eq!(second.wait().unwrap().signal(), Some(9));
}

/// A container built ahead (`prepare_container`, as the shim does at
/// `create`) runs commands that join it, stays after they end, and goes
/// when discarded; a bad name is refused before anything is sent.
fn a_prepared_container_outlives_its_commands_until_discarded(vm: &mut VmHandle) {
    let kept = GuestContainer::new("kept", "/pod/c2")
        .readonly_root(true)
        .bind("/pod/vol", "/vol", false);
    vm.prepare_container(&kept).unwrap();
    for _ in 0..2 {
        let (code, text) = run(
            vm,
            sh("cat /c2-marker; touch /x 2>&1; cat /vol/from-c1").in_container("kept"),
        );
        assert_eq!(code, Some(0), "{text}");
        assert!(
            text.starts_with("c2") && text.contains("Read-only file system"),
            "{text}"
        );
        assert!(text.ends_with("from-c1\n"), "{text}");
    }
    let setup_errno = |result: monocore::MonocoreResult<()>| match result {
        Err(MonocoreError::GuestSetup {
            step: GuestStep::Container,
            errno,
            ..
        }) => errno,
        other => panic!("{other:?}"),
    };
    // Its name is taken while it is kept.
    assert_eq!(setup_errno(vm.prepare_container(&kept)), libc::EEXIST);
    vm.discard_container("kept").unwrap();
    match vm.exec(GuestCommand::new("true").in_container("kept")) {
        Err(MonocoreError::GuestSetup { errno, .. }) => assert_eq!(errno, libc::ENOENT),
        other => panic!("{other:?}"),
    }
    assert_eq!(setup_errno(vm.discard_container("kept")), libc::ENOENT);
    assert!(matches!(
        vm.prepare_container(&GuestContainer::new("a/b", "/pod/c2")),
        Err(MonocoreError::GuestCommand(_))
    ));
}

/// The planted symlinks led the mount points to c1's own top, not the
/// VM's root or the host's.
fn nothing_escaped(vm: &mut VmHandle, root: &Path) {
    let (code, text) = run(vm, sh("ls /; echo; ls /pod/c1"));
    assert_eq!(code, Some(0));
    let (vm_top, c1_top) = text.split_once("\n\n").unwrap();
    assert!(!vm_top.contains("planted"), "{vm_top}");
    assert!(
        c1_top.contains("planted-dir") && c1_top.contains("planted-file"),
        "{c1_top}"
    );
    assert!(!root.join("planted-dir").exists() && !root.join("planted-file").exists());
    assert!(!root.parent().unwrap().join("planted-file").exists());
    assert!(root.join("pod/c1/planted-dir").is_dir());
    assert!(root.join("pod/c1/planted-file").is_file());
}

/// What a container costs next to an exec in the VM (printed, not
/// asserted: the figures depend on the host).
fn timings(vm: &mut VmHandle) {
    let mut time = |label: &str, command: GuestCommand| {
        let started = Instant::now();
        let (code, text) = run(vm, command);
        assert_eq!(code, Some(0), "{label}: {text}");
        println!("{label}: {:?}", started.elapsed());
    };
    for _ in 0..2 {
        time(
            "exec of `true` in the VM",
            piped(GuestCommand::new("/bin/true")),
        );
        time(
            "`true` in a new container (set up and torn down)",
            piped(GuestCommand::new("/bin/true")).in_new_container(
                GuestContainer::new("timing", "/pod/c2").bind("/pod/vol", "/vol", false),
            ),
        );
    }
}
