//! Real boots, each VM in its own helper process (this test binary, run
//! again as the VM helper: the default of `spawn`). They run wherever
//! `monocore::host::check()` finds a kernel that boots (on this project's
//! `kvm_pvm` development host and in CI: the compat kernel, ~20 s a boot at 128 MiB);
//! elsewhere each prints `SKIPPED: <test>: <reason>` (or fails, with
//! `MONOCORE_REQUIRE_BOOT=1`). The test harness runs them two at a time.
//!
//! Every test also checks that nothing is left: the helper process is
//! reaped and the VM's private run directory is gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{fs, time::Duration};

use monocore::{
    MonocoreError,
    config::EnvPair,
    vm::{GuestStep, MicroVm, MicroVmConfig},
};
use monocore_suite::{
    assert_nothing_left, busybox_rootfs, may_boot,
    run::{BOOT_TIMEOUT, Finished, options, run_to_end},
    sh_config,
};

/// Boots `config`, waits for it, and checks that nothing is left. `None`
/// when this host cannot boot (the skip is printed).
fn boot(test: &str, config: MicroVmConfig) -> Option<Finished> {
    may_boot(test).then(|| run_to_end(test, config))
}

#[test]
fn echo_prints_a_marker_on_the_console() {
    let root = busybox_rootfs().unwrap();
    let mut config = MicroVmConfig::new(root.path(), 128);
    config.exec_path = Some("/bin/echo".into());
    config.args = vec!["monocore-boot-marker".into()];
    let Some(vm) = boot("echo_prints_a_marker_on_the_console", config) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(vm.console, "monocore-boot-marker\n");
}

#[test]
fn two_vcpus_boot_and_are_online() {
    let root = busybox_rootfs().unwrap();
    let mut config = sh_config(root.path(), "grep -c ^processor /proc/cpuinfo");
    config.num_vcpus = 2;
    let Some(vm) = boot("two_vcpus_boot_and_are_online", config) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(vm.console, "2\n");
}

#[test]
fn exit_code_7_propagates() {
    let root = busybox_rootfs().unwrap();
    let Some(vm) = boot("exit_code_7_propagates", sh_config(root.path(), "exit 7")) else {
        return;
    };
    assert_eq!(vm.code(), Some(7), "{}", vm.console);
}

#[test]
fn exit_code_255_propagates() {
    let root = busybox_rootfs().unwrap();
    let Some(vm) = boot(
        "exit_code_255_propagates",
        sh_config(root.path(), "exit 255"),
    ) else {
        return;
    };
    assert_eq!(vm.code(), Some(255), "{}", vm.console);
}

#[test]
fn args_env_and_workdir_reach_the_guest_byte_for_byte() {
    let root = busybox_rootfs().unwrap();
    fs::create_dir(root.path().join("work dir")).unwrap();
    // Each argument, the environment the shell was executed with (as the
    // kernel recorded it, before the shell adds its own), and the working
    // directory, one per line.
    let mut config = sh_config(
        root.path(),
        "for a in \"$0\" \"$@\"; do echo \"arg|$a|\"; done; tr '\\0' '\\n' < /proc/$$/environ | sort | sed 's/^/env|/'; echo \"pwd|$(pwd)|\"",
    );
    // Nothing travels on the kernel command line any more: quotes, UTF-8,
    // tabs, newlines and large values reach the guest unchanged.
    // Large for a kernel command line (which held 2-64 KiB); kept small
    // enough that the console echoes it fast on the slow compat kernel.
    let large = "x".repeat(16 * 1024);
    let args = [
        "first",
        "two words",
        "\"double\" and 'single' quotes",
        "KRUN_INIT=/evil -- init=/x",
        "  leading and trailing spaces  ",
        "",
        "ünïcode ✓ 😀",
        "tab\there",
        "line one\nline two",
        large.as_str(),
    ];
    config.args.extend(args.iter().map(|a| a.to_string()));
    let mut env = [
        ("GREETING", "hello \"guest\""),
        ("EMPTY", ""),
        ("KRUN_WORKDIR", "/not-special"),
        ("ÜNICODE", "ü ✓"),
        ("TAB", "a\tb"),
        ("LARGE", large.as_str()),
    ];
    config.env = env.iter().map(|(n, v)| EnvPair::new(*n, *v)).collect();
    config.workdir_path = Some("/work dir".into());
    let Some(vm) = boot("args_env_and_workdir_reach_the_guest_byte_for_byte", config) else {
        return;
    };
    assert_eq!(
        vm.code(),
        Some(0),
        "{}",
        &vm.console[..vm.console.len().min(2000)]
    );
    let mut expected = String::new();
    for a in args {
        expected.push_str(&format!("arg|{a}|\n"));
    }
    // The environment is exactly the config's: nothing from the host, the
    // kernel or libkrun's init (sorted bytewise, as `sort` in the C locale).
    env.sort_by(|a, b| format!("{}={}", a.0, a.1).cmp(&format!("{}={}", b.0, b.1)));
    for (name, value) in env {
        expected.push_str(&format!("env|{name}={value}\n"));
    }
    expected.push_str("pwd|/work dir|\n");
    assert!(
        vm.console == expected,
        "got:\n{}",
        &vm.console[..vm.console.len().min(4000)]
    );
}

#[test]
fn mapped_dirs_are_mounted_readable_writable_and_apart() {
    let root = busybox_rootfs().unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    fs::write(a.path().join("in.txt"), "from-host-a\n").unwrap();
    fs::write(b.path().join("in.txt"), "from-host-b\n").unwrap();
    let mut config = sh_config(
        root.path(),
        "cat /data/in.txt /srv/deep/b/in.txt && echo from-guest > /data/out.txt && ls /srv/deep/b",
    );
    config.mapped_dirs = vec![
        format!("{}:/data", a.path().display()).parse().unwrap(),
        format!("{}:/srv/deep/b", b.path().display())
            .parse()
            .unwrap(),
    ];
    let Some(vm) = boot(
        "mapped_dirs_are_mounted_readable_writable_and_apart",
        config,
    ) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(vm.console, "from-host-a\nfrom-host-b\nin.txt\n");
    assert_eq!(
        fs::read_to_string(a.path().join("out.txt")).unwrap(),
        "from-guest\n"
    );
    assert!(
        !b.path().join("out.txt").exists(),
        "the write crossed into the other dir"
    );
    // The mount points were made in the guest, inside its root.
    assert!(root.path().join("srv/deep/b").is_dir());
}

#[test]
fn rlimits_reach_the_guest() {
    let root = busybox_rootfs().unwrap();
    let mut config = sh_config(
        root.path(),
        "grep -E 'Max (open files|processes)' /proc/self/limits",
    );
    config.rlimits = vec![
        "RLIMIT_NOFILE=123:456".parse().unwrap(),
        "RLIMIT_NPROC=77:88".parse().unwrap(),
    ];
    let Some(vm) = boot("rlimits_reach_the_guest", config) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let lines: Vec<Vec<String>> = vm.console.lines().map(words).collect();
    assert_eq!(
        lines,
        vec![
            words("Max processes 77 88 processes"),
            words("Max open files 123 456 files")
        ],
        "{}",
        vm.console
    );
}

#[test]
fn the_console_carries_stdout_and_stderr_and_can_go_to_a_file() {
    let root = busybox_rootfs().unwrap();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("console.log");
    let mut config = sh_config(root.path(), "echo to-stdout; echo to-stderr >&2");
    let Some(vm) = boot(
        "the_console_carries_stdout_and_stderr (captured)",
        config.clone(),
    ) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(vm.console, "to-stdout\nto-stderr\n");

    config.console_output = Some(file.to_str().unwrap().into());
    let Some(vm) = boot("the_console_carries_stdout_and_stderr (file)", config) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(fs::read_to_string(&file).unwrap(), "to-stdout\nto-stderr\n");
}

#[test]
fn a_sleeping_guest_times_out_and_is_killed_leaving_nothing() {
    if !may_boot("a_sleeping_guest_times_out_and_is_killed_leaving_nothing") {
        return;
    }
    let root = busybox_rootfs().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let config = sh_config(root.path(), "echo sleeping; exec sleep 600");
    let mut handle = MicroVm::from_config(config)
        .unwrap()
        .spawn_with(&options(runs.path()))
        .unwrap();
    let pid = handle.pid();
    // Wait until the guest runs its command.
    let started = std::time::Instant::now();
    while !String::from_utf8_lossy(&handle.console_output()).contains("sleeping") {
        assert!(
            started.elapsed() < BOOT_TIMEOUT,
            "the guest never started sleeping"
        );
        assert_eq!(
            handle.wait_timeout(Duration::from_millis(200)).unwrap(),
            None
        );
    }
    assert_eq!(handle.wait_timeout(Duration::from_secs(1)).unwrap(), None);
    handle.kill().unwrap();
    let status = handle.wait().unwrap();
    assert_eq!((status.code(), status.signal()), (None, Some(9)));
    assert_nothing_left(pid, runs.path());
    drop(handle);
}

#[test]
fn the_command_sees_its_root_not_the_private_one() {
    let root = busybox_rootfs().unwrap();
    let config = sh_config(
        root.path(),
        "ls -a /; test -e /.monocore && echo LEAK; cat /proc/mounts | cut -d' ' -f1,2",
    );
    let Some(vm) = boot("the_command_sees_its_root_not_the_private_one", config) else {
        return;
    };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert!(!vm.console.contains("LEAK"), "{}", vm.console);
    assert!(vm.console.contains("monocore_root /\n"), "{}", vm.console);
    // Nothing of the agent was written into the user's root.
    assert!(!root.path().join(".monocore").exists());
}

#[test]
fn a_hostile_rootfs_cannot_lead_a_mount_point_out_of_the_root() {
    let root = busybox_rootfs().unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    // /etc and /mnt point at a host directory, absolutely and relatively.
    fs::remove_dir_all(root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(host_dir.path(), root.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", root.path().join("up")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = sh_config(root.path(), "echo guest-ran > /etc/probe; ls /etc/shares");
    config.mapped_dirs = vec![
        format!("{}:/etc/shares/data", data.path().display())
            .parse()
            .unwrap(),
        format!("{}:/up/escape", data.path().display())
            .parse()
            .unwrap(),
    ];
    let Some(vm) = boot(
        "a_hostile_rootfs_cannot_lead_a_mount_point_out_of_the_root",
        config,
    ) else {
        return;
    };
    // In the guest, /etc is a dangling link to a path that exists only on
    // the host: the mount point is made (or fails) inside the guest.
    match &vm.outcome {
        Ok(_) | Err(MonocoreError::GuestSetup { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    assert_eq!(
        fs::read_dir(host_dir.path()).unwrap().count(),
        0,
        "the host dir was written"
    );
}

#[test]
fn a_missing_command_is_a_typed_error_not_an_exit_code() {
    let root = busybox_rootfs().unwrap();
    let mut config = MicroVmConfig::new(root.path(), 128);
    config.exec_path = Some("/no/such/program".into());
    let Some(vm) = boot(
        "a_missing_command_is_a_typed_error_not_an_exit_code",
        config,
    ) else {
        return;
    };
    match vm.outcome {
        Err(MonocoreError::GuestSetup {
            step: GuestStep::Exec,
            errno,
            ref detail,
        }) => {
            assert_eq!((errno, detail.as_str()), (libc::ENOENT, "/no/such/program"));
        }
        other => panic!("{other:?}\n{}", vm.console),
    }
}

#[test]
fn a_mount_point_under_a_file_is_a_typed_error_naming_the_dir() {
    let root = busybox_rootfs().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = sh_config(root.path(), "true");
    config.mapped_dirs = vec![
        format!("{}:/ok", data.path().display()).parse().unwrap(),
        format!("{}:/bin/busybox/inside", data.path().display())
            .parse()
            .unwrap(),
    ];
    let Some(vm) = boot(
        "a_mount_point_under_a_file_is_a_typed_error_naming_the_dir",
        config,
    ) else {
        return;
    };
    match vm.outcome {
        Err(
            ref e @ MonocoreError::GuestSetup {
                step: GuestStep::Mount { index: 1 },
                errno,
                ..
            },
        ) => {
            assert_eq!(errno, libc::ENOTDIR, "{e}");
            assert!(
                e.to_string()
                    .contains("mapped_dirs[1] at /bin/busybox/inside"),
                "{e}"
            );
        }
        other => panic!("{other:?}\n{}", vm.console),
    }
}
