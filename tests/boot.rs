//! Real boots: they run only when a probe boot succeeds on this host (each VM
//! in its own helper process); otherwise each test prints
//! `SKIPPED: <reason from monocore::host::check>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{fs, sync::OnceLock, time::Duration};

use monocore::{
    config::EnvPair,
    vm::{MicroVm, MicroVmConfig, SpawnOptions, VmExitStatus},
};
use monocore_suite::{busybox_rootfs, probe_boot, sh_config, skip};

const HELPER: &str = env!("CARGO_BIN_EXE_monocore-suite-vmm");

/// `Err(reason)` when this host cannot boot; probed once per test binary.
fn can_boot() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| probe_boot(std::path::Path::new(HELPER)))
        .clone()
}

/// Runs `config`, returning its exit status and console.
fn run(config: MicroVmConfig) -> (VmExitStatus, String) {
    let mut handle = MicroVm::from_config(config)
        .unwrap()
        .spawn_with(
            &SpawnOptions::new()
                .capture_console(true)
                .helper_path(HELPER),
        )
        .unwrap();
    let status = handle
        .wait_timeout(Duration::from_secs(120))
        .unwrap()
        .expect("the VM did not finish within 120 s");
    let console = String::from_utf8_lossy(&handle.console_output()).into_owned();
    (status, console)
}

macro_rules! boot_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            if let Err(reason) = can_boot() {
                skip(stringify!($name), &reason);
                return;
            }
            $body
        }
    };
}

boot_test!(echo_prints_a_marker_on_the_console, {
    let root = busybox_rootfs().unwrap();
    let (status, console) = run(sh_config(root.path(), "echo monocore-boot-marker"));
    assert_eq!(status.code(), Some(0), "{console}");
    assert!(console.contains("monocore-boot-marker"), "{console}");
});

boot_test!(the_guest_exit_code_propagates, {
    let root = busybox_rootfs().unwrap();
    let (status, console) = run(sh_config(root.path(), "exit 7"));
    assert_eq!(status.code(), Some(7), "{console}");
    assert!(!status.success());
});

boot_test!(args_env_and_workdir_reach_the_guest, {
    let root = busybox_rootfs().unwrap();
    fs::create_dir(root.path().join("work")).unwrap();
    let mut config = sh_config(
        root.path(),
        "echo arg=$0 env=$GREETING pwd=$(pwd) empty=[$EMPTY]",
    );
    config.args.push("first-arg".into());
    config.env = vec![
        EnvPair::new("GREETING", "hello-guest"),
        EnvPair::new("EMPTY", ""),
    ];
    config.workdir_path = Some("/work".into());
    let (status, console) = run(config);
    assert_eq!(status.code(), Some(0), "{console}");
    assert!(
        console.contains("arg=first-arg env=hello-guest pwd=/work empty=[]"),
        "{console}"
    );
});

boot_test!(a_mapped_dir_is_readable_in_the_guest, {
    let root = busybox_rootfs().unwrap();
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("hello.txt"), "shared-over-virtiofs\n").unwrap();
    let mut config = sh_config(root.path(), "mount -a && cat /data/hello.txt");
    config.mapped_dirs = vec![format!("{}:/data", data.path().display()).parse().unwrap()];
    let (status, console) = run(config);
    assert_eq!(status.code(), Some(0), "{console}");
    assert!(console.contains("shared-over-virtiofs"), "{console}");
});
