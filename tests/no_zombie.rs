//! No orphan or zombie is left behind. This file holds one test so no other
//! test's children run in the same process while it counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::time::Duration;

use monocore::vm::{MicroVm, MicroVmConfig, SpawnOptions};
use monocore_suite::{busybox_rootfs, live_children, sh_config, slow_helper};

#[test]
fn spawn_wait_kill_and_drop_leave_no_child_behind() {
    assert_eq!(live_children(), vec![], "children before the test");
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_helper(dir.path()).unwrap();
    let idle = MicroVm::from_config(MicroVmConfig::new(dir.path(), 128)).unwrap();
    let root = busybox_rootfs().unwrap();
    let real = MicroVm::from_config(sh_config(root.path(), "echo hi")).unwrap();
    // The default helper: this test binary, run again.
    let real_options = SpawnOptions::new().capture_console(true);

    // wait() on the real helper (boots or fails to boot; either way it ends).
    let mut a = real.spawn_with(&real_options).unwrap();
    let _ = a.wait_timeout(Duration::from_secs(120));
    // kill() on a slow one.
    let mut b = idle
        .spawn_with(&SpawnOptions::new().helper_path(&slow))
        .unwrap();
    b.kill().unwrap();
    // drop without waiting, both kinds.
    let c = idle
        .spawn_with(&SpawnOptions::new().helper_path(&slow))
        .unwrap();
    let d = real.spawn_with(&real_options).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(c);
    drop(d);
    drop((a, b));

    let left = live_children();
    assert_eq!(
        left,
        vec![],
        "children (pid, state) left behind; 'Z' is a zombie"
    );
}
