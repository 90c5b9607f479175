use std::{fs, time::Duration};

use super::*;
use crate::{error::MonocoreError, host::kernel::KernelChoice};

fn vm() -> (tempfile::TempDir, MicroVm) {
    let root = tempfile::tempdir().unwrap();
    let mut config = crate::config::MicroVmConfig::new(root.path(), 64);
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
        Err(MonocoreError::Helper(HelperError::Exited { .. }))
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
    assert_eq!(request.kernel, crate::host::kernel::GuestKernel::Libkrunfw);
    let run = crate::state::RunPaths::new(&request.run_dir);
    assert!(run.id().is_some(), "not a run directory: {text}");
    // An anonymous pipe: no path another user could open or replace.
    assert!(fd0.starts_with("pipe:["), "{fd0}");
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
        Err(MonocoreError::Helper(HelperError::Exited { .. }))
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

/// `setns` into another network namespace needs `CAP_SYS_ADMIN`: root, as
/// CI runs the tests. Elsewhere the test says so (and fails where boots
/// are required).
fn may_enter_namespaces(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("MONOCORE_REQUIRE_BOOT").is_none_or(|v| v != "1"),
        "{test}: entering a network namespace needs root, and MONOCORE_REQUIRE_BOOT=1"
    );
    eprintln!("SKIPPED: {test}: entering a network namespace needs root");
    false
}

#[test]
fn the_helper_runs_in_the_network_namespace_it_is_given() {
    if !may_enter_namespaces("the_helper_runs_in_the_network_namespace_it_is_given") {
        return;
    }
    // A process in a network namespace of its own holds one open.
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/ns/net", holder.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mine = fs::read_link("/proc/self/ns/net").unwrap();
    while fs::read_link(&path).is_ok_and(|ns| ns == mine) {
        assert!(std::time::Instant::now() < deadline, "unshare did not take");
        std::thread::sleep(Duration::from_millis(20));
    }
    let theirs = fs::read_link(&path).unwrap();
    let (_root, vm) = vm();
    let runs = tempfile::tempdir().unwrap();
    let options = SpawnOptions::new()
        .capture_console(true)
        .helper_path("/bin/readlink")
        .helper_args(["/proc/self/ns/net"])
        .kernel(KernelChoice::Libkrunfw)
        .runs_dir(runs.path())
        .network_namespace(fs::File::open(&path).unwrap());
    let mut handle = vm.spawn_with(&options).unwrap();
    let _ = handle.wait();
    let _ = holder.kill();
    let _ = holder.wait();
    let seen = String::from_utf8(handle.console_output()).unwrap();
    assert_eq!(seen.trim(), theirs.to_str().unwrap());
    assert_ne!(seen.trim(), mine.to_str().unwrap());

    // A descriptor that is no network namespace: the helper never starts.
    let options = SpawnOptions::new()
        .helper_path("/bin/true")
        .kernel(KernelChoice::Libkrunfw)
        .runs_dir(runs.path())
        .network_namespace(tempfile::tempfile().unwrap());
    assert!(matches!(
        vm.spawn_with(&options),
        Err(MonocoreError::Helper(HelperError::Start { .. }))
    ));
    // Nothing of it is left.
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
}
