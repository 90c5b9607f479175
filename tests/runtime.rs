//! The runtime on any host: applying a full config (every `krun_*` call up
//! to `krun_start_enter`), error mapping, and spawn/wait/kill/timeout on the
//! failure path. Real boots are in `tests/boot.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{fs, os::unix::ffi::OsStrExt, path::Path, time::Duration};

use monocore::{
    Field, MonocoreError, RuleError,
    config::{EnvPair, PathPair, PortPair},
    error::HelperError,
    kernel::KernelChoice,
    vm::{LinuxRlimit, LogLevel, MicroVm, MicroVmConfig, SpawnOptions},
};
use monocore_suite::{busybox_rootfs, is_reaped, sh_config, slow_helper};

/// A separate helper binary whose `main` is `helper_main()`, for those who
/// want one; by default this test binary is its own helper.
const SEPARATE_HELPER: &str = env!("CARGO_BIN_EXE_monocore-suite-vmm");

fn options() -> SpawnOptions {
    SpawnOptions::new().capture_console(true)
}

fn full_config(root: &Path, data: &Path, console: &Path) -> MicroVmConfig {
    let mut config = MicroVmConfig::new(root, 256);
    config.log_level = LogLevel::Warn;
    config.num_vcpus = 2;
    config.mapped_dirs = vec![
        format!("{}:/data", data.display())
            .parse::<PathPair>()
            .unwrap(),
        format!("{}:/srv/deep/share", data.display())
            .parse::<PathPair>()
            .unwrap(),
    ];
    config.local_only = false;
    config.port_map = vec![
        "8080:80".parse::<PortPair>().unwrap(),
        "9443".parse().unwrap(),
    ];
    config.rlimits = vec!["RLIMIT_NOFILE=1024:2048".parse::<LinuxRlimit>().unwrap()];
    config.workdir_path = Some("/tmp".into());
    config.exec_path = Some("/bin/sh".into());
    config.args = vec!["-c".into(), "echo hi; exit 3".into()];
    config.env = vec![EnvPair::new("GREETING", "hello"), EnvPair::new("EMPTY", "")];
    config.console_output = Some(console.to_str().unwrap().into());
    config
}

/// libkrunfw's kernel: every `krun_*` call up to `krun_start_enter` works
/// with it on any host (libkrunfw itself is loaded only when a VM starts),
/// and it allows networking, which an ELF kernel does not.
const LIBKRUNFW: KernelChoice = KernelChoice::Libkrunfw;

#[test]
fn a_full_config_passes_every_krun_call_up_to_start_enter() {
    let root = busybox_rootfs().unwrap();
    let data = tempfile::tempdir().unwrap();
    let console = data.path().join("console.log");
    let before: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let vm = MicroVm::from_config(full_config(root.path(), data.path(), &console)).unwrap();

    let prepared = vm.prepare_with_kernel(&LIBKRUNFW).unwrap();
    // Nothing was written into the root filesystem: mount points are made
    // by the guest agent, inside the guest.
    let after: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(before, after);
    assert!(!root.path().join("srv").exists());
    drop(prepared);

    // Again: a fresh context each time.
    let a = vm.prepare_with_kernel(&LIBKRUNFW).unwrap();
    let b = vm.prepare_with_kernel(&LIBKRUNFW).unwrap();
    assert_ne!(a.context_id(), b.context_id());
}

#[test]
fn the_default_network_is_none_and_ports_need_local_only_false() {
    let root = tempfile::tempdir().unwrap();
    let mut config = MicroVmConfig::new(root.path(), 128);
    assert!(config.local_only);
    MicroVm::from_config(config.clone())
        .unwrap()
        .prepare_with_kernel(&LIBKRUNFW)
        .unwrap();

    // Refused by validation, before any libkrun call, at the port mapping.
    config.port_map = vec!["8080:80".parse().unwrap()];
    let err = MicroVm::from_config(config.clone()).unwrap_err();
    let MonocoreError::InvalidMicroVmConfig(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.at, Field::PortMap.at(0));
    assert!(
        matches!(e.rule_error(), Some(RuleError::PortMapNeedsNetworking { pair }) if pair == "8080:80"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("set `local_only` to false"),
        "{err}"
    );
    config.local_only = false;
    MicroVm::from_config(config.clone())
        .unwrap()
        .prepare_with_kernel(&LIBKRUNFW)
        .unwrap();

    config.port_map.clear();
    config.assigned_ip = Some("192.168.1.2".parse().unwrap());
    let err = MicroVm::from_config(config).unwrap_err();
    assert!(
        matches!(&err, MonocoreError::InvalidMicroVmConfig(e) if e.at == Field::Ip.whole()),
        "{err:?}"
    );
}

#[test]
fn networking_with_an_elf_kernel_is_refused_up_front() {
    // The compat kernel (an ELF kernel) has no TSI: a fact of the kernel
    // this host boots, checked before anything starts.
    let root = tempfile::tempdir().unwrap();
    let kernel = root.path().join("vmlinux");
    fs::write(&kernel, b"\x7fELF").unwrap();
    let mut config = MicroVmConfig::new(root.path(), 128);
    config.local_only = false;
    let vm = MicroVm::from_config(config).unwrap();
    let elf = KernelChoice::Elf(kernel);
    for err in [
        vm.check_support_with_kernel(&elf).unwrap_err(),
        vm.prepare_with_kernel(&elf).unwrap_err(),
        vm.spawn_with(&options().kernel(elf.clone())).unwrap_err(),
    ] {
        assert!(
            matches!(&err, MonocoreError::HostCannotRun(e) if e.at == Field::LocalOnly.whole())
                || matches!(err, MonocoreError::HostCannotBoot { .. }),
            "{err:?}"
        );
    }
}

/// Two host ports for one guest port used to pass validation and fail in
/// libkrun's `krun_set_port_map` with `EINVAL`; now it is a validation error
/// at the second mapping, and no libkrun call is made.
#[test]
fn two_host_ports_for_one_guest_port_are_refused_before_libkrun() {
    let root = tempfile::tempdir().unwrap();
    let mut config = MicroVmConfig::new(root.path(), 128);
    config.local_only = false;
    config.port_map = vec!["8080:80".parse().unwrap(), "8081:80".parse().unwrap()];
    let err = MicroVm::from_config(config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid microVM configuration: port_map[1]: guest port 80 is mapped twice: each guest port may be mapped once (libkrun refuses two host ports for one guest port)"
    );
}

/// `--ram 4294967295` used to fail in `krun_start_enter` with `EINVAL`
/// (the helper's mmap of 4 PiB); now `spawn` refuses it before any process
/// starts, naming `ram`.
#[test]
fn more_ram_than_the_host_has_is_refused_before_the_helper_starts() {
    if !monocore_suite::kvm_usable("more_ram_than_the_host_has_is_refused_before_the_helper_starts")
    {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), u32::MAX)).unwrap();
    let before = monocore_suite::live_children().len();
    let err = vm.spawn_with(&options().kernel(LIBKRUNFW)).unwrap_err();
    assert!(
        matches!(&err, MonocoreError::HostCannotRun(e) if e.at == Field::Ram.whole()),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than this host has"), "{err}");
    assert_eq!(monocore_suite::live_children().len(), before);
}

#[test]
fn a_non_utf8_root_path_is_a_validation_error_never_reaching_ffi() {
    // libkrun takes only UTF-8 paths: a root it cannot take does not validate.
    let parent = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"root-\xff");
    let root = parent.path().join(name);
    fs::create_dir(&root).unwrap();
    let err = MicroVm::from_config(MicroVmConfig::new(&root, 128)).unwrap_err();
    assert!(
        matches!(&err, MonocoreError::InvalidMicroVmConfig(e) if e.at.to_string() == "root"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
}

#[test]
fn a_failed_boot_is_a_typed_error_never_a_guest_exit_code() {
    const TEST: &str = "a_failed_boot_is_a_typed_error_never_a_guest_exit_code";
    // A kernel known to die in boot: libkrunfw's on a kvm_pvm host, where
    // its first cmpxchg16b ends the VM with KVM_EXIT_INTERNAL_ERROR. Where
    // no kernel is known to fail (hardware KVM boots libkrunfw's), the test
    // cannot run, and says so: a boot that succeeds never passes it.
    if !monocore::kernel::host_is_pvm() {
        monocore_suite::skip(
            TEST,
            "no guest kernel is known to fail to boot on this host (libkrunfw's kernel fails only on kvm_pvm)",
        );
        return;
    }
    if monocore_suite::libkrunfw_at_build_time().is_none() {
        monocore_suite::cannot_run(
            TEST,
            "libkrunfw.so.5 is not installed, so its kernel cannot be started to fail (run ./scripts/setup.sh)",
        );
        return;
    }
    if !monocore_suite::kvm_usable(TEST) {
        return;
    }
    let root = busybox_rootfs().unwrap();
    let vm = MicroVm::from_config(sh_config(root.path(), "echo monocore-marker; exit 0")).unwrap();
    let mut handle = vm.spawn_with(&options().kernel(LIBKRUNFW)).unwrap();
    assert!(handle.pid() > 0);
    let result = handle.wait_timeout(Duration::from_secs(180)).transpose();
    // The helper got as far as krun_start_enter.
    assert!(handle.entered_at().is_some(), "{:?}", handle.log_tail());
    assert!(handle.spawn_to_enter().is_some());
    let Some(Err(MonocoreError::BootFailed {
        last_error_line,
        vmm_exit_code,
    })) = result
    else {
        panic!(
            "expected BootFailed, got {result:?}; log: {:#?}",
            handle.log_tail()
        );
    };
    println!("boot failure, as expected: {last_error_line} (VMM exit {vmm_exit_code})");
    assert!(!last_error_line.is_empty());
    // Classified from libkrun's own exit-code line, not guessed.
    assert!(
        handle
            .log_tail()
            .iter()
            .any(|l| l.contains("] using vcpu exit code: ")),
        "{:#?}",
        handle.log_tail()
    );
    assert!(!last_error_line.contains("monocore-marker"));
    assert!(!String::from_utf8_lossy(&handle.console_output()).contains("monocore-marker"));
}

#[test]
fn a_separate_helper_binary_still_runs_the_vm() {
    // Through `helper_path`, to `krun_start_enter`, whose ELF loader refuses
    // this kernel at once on any host.
    let root = tempfile::tempdir().unwrap();
    let kernel = root.path().join("vmlinux");
    fs::write(&kernel, b"\x7fELF, but not a kernel").unwrap();
    let vm = MicroVm::from_config(sh_config(root.path(), "true")).unwrap();
    let mut handle = vm
        .spawn_with(
            &options()
                .helper_path(SEPARATE_HELPER)
                .kernel(KernelChoice::Elf(kernel)),
        )
        .unwrap();
    let err = handle.wait().unwrap_err();
    assert!(
        matches!(
            err,
            MonocoreError::Krun {
                call: "krun_start_enter",
                errno: 22
            }
        ),
        "{err:?}: {:#?}",
        handle.log_tail()
    );
}

#[test]
fn a_missing_helper_is_a_typed_error() {
    if !monocore_suite::kvm_usable("a_missing_helper_is_a_typed_error") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 128)).unwrap();
    let err = vm
        .spawn_with(&SpawnOptions::new().helper_path("/no/such/monocore-vmm"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MonocoreError::Helper(HelperError::Start { ref program, .. }) if program == "/no/such/monocore-vmm"
        ),
        "{err:?}"
    );
}

#[test]
fn timeout_then_kill_reaps_a_slow_helper() {
    if !monocore_suite::kvm_usable("timeout_then_kill_reaps_a_slow_helper") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_helper(dir.path()).unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(dir.path(), 128)).unwrap();
    let mut handle = vm
        .spawn_with(&SpawnOptions::new().helper_path(&slow))
        .unwrap();
    let pid = handle.pid();
    let started = std::time::Instant::now();
    assert_eq!(
        handle.wait_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!is_reaped(pid));
    handle.kill().unwrap();
    assert!(is_reaped(pid));
    let status = handle.wait().unwrap();
    assert_eq!((status.code(), status.signal()), (None, Some(9)));
    // Killing again is harmless.
    handle.kill().unwrap();
}

#[test]
fn dropping_a_handle_kills_and_reaps() {
    if !monocore_suite::kvm_usable("dropping_a_handle_kills_and_reaps") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_helper(dir.path()).unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(dir.path(), 128)).unwrap();
    let handle = vm
        .spawn_with(&SpawnOptions::new().helper_path(&slow))
        .unwrap();
    let pid = handle.pid();
    assert!(!is_reaped(pid));
    drop(handle);
    assert!(is_reaped(pid));
}
