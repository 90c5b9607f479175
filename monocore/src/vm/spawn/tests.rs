use std::fs;

use super::*;

fn vm() -> (tempfile::TempDir, MicroVm) {
    let root = tempfile::tempdir().unwrap();
    let mut config = crate::vm::MicroVmConfig::new(root.path(), 64);
    config.exec_path = Some("/bin/true".into());
    config.args = vec!["a b".into()];
    let vm = MicroVm::from_config(config).unwrap();
    (root, vm)
}

/// Runs a stand-in helper that prints what it sees instead of booting.
fn run_fake_helper(vm: &MicroVm, path: &str, args: &[&str]) -> Vec<u8> {
    let runs = tempfile::tempdir().unwrap();
    let options = SpawnOptions::new()
        .capture_console(true)
        .helper_path(path)
        .helper_args(args)
        .kernel(KernelChoice::Libkrunfw)
        .runs_dir(runs.path());
    let mut handle = vm.spawn_with(&options).unwrap();
    // The VM's private root was made for it.
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 1);
    // It never says `ready`: a helper failure, with its stdout captured.
    assert!(matches!(
        handle.wait(),
        Err(MonocoreError::HelperFailed { .. })
    ));
    // Once waited for, the run directory is gone.
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
    handle.console_output()
}

#[test]
fn by_default_this_test_binary_is_the_helper_and_reaches_the_vmm() {
    // A kernel that is not one: the helper gets as far as
    // `krun_start_enter`, whose ELF loader refuses it, at once and on
    // any host.
    let (root, vm) = vm();
    let kernel = root.path().join("vmlinux");
    fs::write(&kernel, b"\x7fELF, but not a kernel").unwrap();
    let runs = tempfile::tempdir().unwrap();
    let options = SpawnOptions::new()
        .capture_console(true)
        .kernel(KernelChoice::Elf(kernel))
        .runs_dir(runs.path());
    let mut handle = vm.spawn_with(&options).unwrap();
    let result = handle.wait_timeout(Duration::from_secs(60)).unwrap_err();
    assert!(
        matches!(
            result,
            MonocoreError::Krun {
                call: "krun_start_enter",
                errno: libc::EINVAL
            }
        ),
        "{result:?}: {:#?}",
        handle.log_tail()
    );
    assert!(handle.entered_at().is_some());
    // libkrun's own log line, through the helper's logger.
    assert!(
        handle
            .log_tail()
            .iter()
            .any(|l| l.contains("ERROR krun] Building the microVM failed")),
        "{:#?}",
        handle.log_tail()
    );
    // The test harness did not run a second time: it would have printed
    // `running N tests` (and refused the marker argument).
    assert_eq!(
        String::from_utf8_lossy(&handle.console_output()),
        "",
        "the helper ran the program"
    );
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn the_helper_gets_a_cleared_environment() {
    let (_root, vm) = vm();
    // The test process has HOME, PATH, … set; none may reach the helper.
    assert!(std::env::var_os("PATH").is_some());
    let out = run_fake_helper(&vm, "/usr/bin/env", &[]);
    let text = String::from_utf8(out).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.contains(&"RUST_LOG"), "{text}");
    for name in &names {
        assert!(
            ["RUST_LOG", "RUST_LOG_STYLE", "LD_LIBRARY_PATH"].contains(name),
            "{name} leaked into the helper: {text}"
        );
    }
    assert_eq!(
        names.contains(&"LD_LIBRARY_PATH"),
        std::env::var_os("LD_LIBRARY_PATH").is_some()
    );
}

#[test]
fn the_config_travels_over_an_anonymous_pipe_not_a_file() {
    let (_root, vm) = vm();
    // The stand-in reads the length line and the config from stdin,
    // echoes the config, then shows what its stdin is.
    let script = "read len; head -c \"$len\"; echo; readlink /proc/self/fd/0";
    let out = run_fake_helper(&vm, "/bin/sh", &["-c", script]);
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    let sent = lines.next().unwrap();
    let fd0 = lines.next().unwrap();
    let request: HelperRequest = serde_json::from_str(sent).unwrap();
    assert_eq!(&request.config, vm.get_config(), "{text}");
    assert_eq!(request.kernel, crate::kernel::GuestKernel::Libkrunfw);
    assert!(request.guest_root.ends_with("guest"), "{text}");
    // An anonymous pipe: no path another user could open or replace.
    assert!(fd0.starts_with("pipe:["), "{fd0}");
}

#[test]
fn captured_console_is_bounded() {
    let shared = Mutex::new(Shared::default());
    read_console(
        std::io::repeat(b'x').take((MAX_CONSOLE + 12345) as u64),
        &shared,
    );
    let state = lock(&shared);
    assert_eq!(state.console.len(), MAX_CONSOLE);
    assert!(state.console_truncated);
}

#[test]
fn log_lines_and_the_log_tail_are_bounded() {
    let shared = Mutex::new(Shared::default());
    // One 1 MiB line without a newline, then many short lines.
    let mut input = vec![b'['; 1 << 20];
    for i in 0..1000 {
        input.extend_from_slice(format!("\nline {i}").as_bytes());
    }
    read_log(&input[..], &shared, LogLevel::Off);
    let state = lock(&shared);
    assert_eq!(state.tail.len(), LOG_TAIL);
    assert!(state.tail.iter().all(|l| l.len() <= 64 << 10));
    assert_eq!(state.tail.back().map(String::as_str), Some("line 999"));

    let shared = Mutex::new(Shared::default());
    read_log(&vec![b'a'; 1 << 20][..], &shared, LogLevel::Off);
    let state = lock(&shared);
    assert!(state.tail.iter().all(|l| l.len() <= 64 << 10));
    assert_eq!(state.tail.len(), (1 << 20) / (64 << 10));
}

fn exited(code: i32) -> ExitStatus {
    ExitStatus::from_raw(code << 8)
}

#[test]
fn a_guest_set_up_failure_is_never_a_command_exit_code() {
    let state = Shared {
        entered_at: Some(SystemTime::now()),
        exit_source: Some(ExitSource::Guest(125)),
        ..Shared::default()
    };
    let failed = Report::Failed {
        step: crate::vm::GuestStep::Mount { index: 1 },
        errno: libc::ENODEV,
        detail: "/data".into(),
    };
    match classify(exited(125), false, &state, Ok(failed)) {
        Err(e @ MonocoreError::GuestSetup { .. }) => assert_eq!(
            e.to_string(),
            "the guest cannot mount mapped_dirs[1] at /data: No such device"
        ),
        other => panic!("{other:?}"),
    }
    match classify(exited(137), false, &state, Err("it wrote no report".into())) {
        Err(MonocoreError::GuestAgentSilent {
            exit_code: 125,
            reason,
        }) => {
            assert_eq!(reason, "it wrote no report")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn classification_never_confuses_vmm_failure_with_guest_code() {
    let mut state = Shared {
        entered_at: Some(SystemTime::now()),
        ..Shared::default()
    };
    state.exit_source = Some(ExitSource::Guest(1));
    assert_eq!(
        classify(exited(1), false, &state, Ok(Report::Ready))
            .unwrap()
            .code(),
        Some(1)
    );

    state.exit_source = Some(ExitSource::Vcpu(1));
    state.last_vmm_error = Some("Received KVM_EXIT_INTERNAL_ERROR signal".into());
    match classify(exited(1), false, &state, Ok(Report::Ready)) {
        Err(MonocoreError::BootFailed {
            last_error_line,
            vmm_exit_code: 1,
        }) => assert_eq!(last_error_line, "Received KVM_EXIT_INTERNAL_ERROR signal"),
        other => panic!("{other:?}"),
    }

    state.exit_source = None;
    assert!(matches!(
        classify(exited(0), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::BootFailed { .. })
    ));
    state.entered_at = None;
    assert!(matches!(
        classify(exited(70), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::HelperFailed { .. })
    ));
    state.failure = Some(HelperError::Krun {
        call: "krun_set_root",
        errno: 22,
    });
    assert!(matches!(
        classify(exited(70), false, &state, Ok(Report::Ready)),
        Err(MonocoreError::Krun {
            call: "krun_set_root",
            errno: 22
        })
    ));

    let killed = classify(
        ExitStatus::from_raw(libc::SIGKILL),
        true,
        &Shared::default(),
        Ok(Report::Ready),
    )
    .unwrap();
    assert_eq!(
        (killed.code(), killed.signal()),
        (None, Some(libc::SIGKILL))
    );
    assert_eq!(killed.to_string(), "VM killed by signal 9");
    assert!(matches!(
        classify(
            ExitStatus::from_raw(libc::SIGABRT),
            false,
            &Shared::default(),
            Ok(Report::Ready)
        ),
        Err(MonocoreError::BootFailed { .. })
    ));
}

#[test]
fn console_to_a_file_is_the_helpers_stdout_and_nothing_is_captured() {
    let (_root, vm) = vm();
    let runs = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let options = SpawnOptions::new()
        .capture_console(true)
        .console_to(out.reopen().unwrap())
        .helper_path("/bin/sh")
        .helper_args(["-c", "echo console line; echo log line >&2"])
        .kernel(KernelChoice::Libkrunfw)
        .runs_dir(runs.path());
    assert!(options.is_console_to_file() && !options.is_capturing_console());
    let mut handle = vm.spawn_with(&options).unwrap();
    assert!(matches!(
        handle.wait(),
        Err(MonocoreError::HelperFailed { .. })
    ));
    // Straight to the file, in full; stderr stays the VMM's log.
    assert_eq!(fs::read_to_string(out.path()).unwrap(), "console line\n");
    assert_eq!(handle.console_output(), b"");
    assert!(handle.log_tail().iter().any(|l| l == "log line"));
    // The options keep their descriptor: a second spawn writes there too.
    drop(handle);
    let mut again = vm.spawn_with(&options).unwrap();
    let _ = again.wait();
    assert_eq!(
        fs::read_to_string(out.path()).unwrap(),
        "console line\nconsole line\n"
    );
}

#[test]
fn capture_console_false_after_console_to_inherits_again() {
    let options = SpawnOptions::new()
        .console_to(tempfile::tempfile().unwrap())
        .capture_console(false);
    assert!(!options.is_console_to_file() && !options.is_capturing_console());
}
