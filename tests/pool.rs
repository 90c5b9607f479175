//! The warm pool (`monocore::pool`), with real boots: claims that start
//! their commands with no boot, VMs never reused, the pool refilling,
//! claims with their own root, typed errors, a time to live, and nothing
//! left once the pool and its sandboxes are dropped. Runs where
//! `tests/exec.rs` runs (see there).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code may panic

use std::{
    fs,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    pool::{Pool, PoolConfig, WhenEmpty},
    vm::GuestCommand,
};
use monocore_rules::Field;
use monocore_suite::{assert_nothing_left, busybox_rootfs, may_boot};

const WAIT: Duration = Duration::from_secs(300);

fn sh(script: &str) -> GuestCommand {
    GuestCommand::new("/bin/sh").args(["-c", script])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The helper's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat (11 and 12 here).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[test]
fn claims_run_without_a_boot_get_fresh_vms_and_the_pool_refills() {
    const TEST: &str = "claims_run_without_a_boot_get_fresh_vms_and_the_pool_refills";
    if !may_boot(TEST) {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig::new(1, 256)
            .when_empty(WhenEmpty::Wait(WAIT))
            .runs_dir(runs.path()),
    )
    .unwrap();
    assert!(pool.wait_ready(1, WAIT).unwrap(), "the pool never filled");

    // Bad claims are typed errors, and take no VM.
    let mut big = pool.default_claim();
    big.ram_mib = 512;
    match pool.claim(&big) {
        Err(MonocoreError::Pool(monocore::error::PoolError::RamTooLarge { asked, pool })) => {
            assert_eq!((asked, pool), (512, 256));
        }
        other => panic!("a claim over the pool's RAM: {other:?}"),
    }
    let mut shared = pool.default_claim();
    shared.net = true;
    match pool.claim(&shared) {
        Err(MonocoreError::Pool(monocore::error::PoolError::Unsupported { field, .. })) => {
            assert_eq!(field, Field::Net);
        }
        other => panic!("a claim with net: {other:?}"),
    }
    assert_eq!(pool.ready(), 1, "a refused claim took a VM");

    // The first claim: a VM booted before it was asked for.
    let asked = Instant::now();
    let mut first = pool.claim(&pool.default_claim()).unwrap();
    assert!(first.was_warm());
    assert!(
        first.ready_since() < asked,
        "the VM was not booted before the claim"
    );
    let out = first.run(GuestCommand::new("echo").arg("hello")).unwrap();
    assert_eq!(text(&out.stdout), "hello\n");
    let waited = asked.elapsed();
    let out = first
        .run(sh("echo secret > /tmp/mine && cat /tmp/mine"))
        .unwrap();
    assert_eq!(text(&out.stdout), "secret\n");
    let first_id = first.id().unwrap();
    let first_pid = first.pid();
    drop(first);
    assert!(monocore_suite::wait_ended(
        first_pid,
        Duration::from_secs(30)
    ));

    // The pool refilled; the second claim gets another VM, which has
    // nothing of the first.
    assert!(pool.wait_ready(1, WAIT).unwrap(), "the pool did not refill");
    let mut second = pool.claim(&pool.default_claim()).unwrap();
    assert!(second.was_warm());
    assert_ne!(second.id().unwrap(), first_id);
    let out = second.run(sh("cat /tmp/mine; echo rc=$?")).unwrap();
    assert!(text(&out.stdout).contains("rc=1"), "{}", text(&out.stdout));

    // The idle replacement being booted meanwhile settles to no CPU use.
    assert!(pool.wait_ready(1, WAIT).unwrap(), "the pool did not refill");
    let idle = fs::read_dir(runs.path())
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("meta.json")).ok())
        .filter_map(|meta| {
            let v: serde_json::Value = serde_json::from_str(&meta).ok()?;
            v["pid"].as_u64().map(|p| p as u32)
        })
        .find(|pid| *pid != second.pid());
    if let Some(pid) = idle {
        std::thread::sleep(Duration::from_secs(2));
        let before = cpu_time(pid);
        std::thread::sleep(Duration::from_secs(5));
        let used = cpu_time(pid) - before;
        assert!(
            used < Duration::from_millis(500),
            "an idle pool VM used {used:?} of CPU in 5 s"
        );
    }
    eprintln!("claim to echo's output: {waited:?}");

    // A sandbox's commands are bounded like any VM's.
    let err = second
        .run(sh("echo started; sleep 300").timeout(Duration::from_secs(2)))
        .unwrap_err();
    let MonocoreError::CommandTimedOut { stdout, .. } = err else {
        panic!("not a timeout: {err:?}")
    };
    assert_eq!(text(&stdout), "started\n");

    // A time to live ends the sandbox's VM.
    second.set_time_to_live(Duration::from_secs(1)).unwrap();
    let ended = second.wait_timeout(Duration::from_secs(30)).unwrap();
    assert!(ended.is_some(), "the VM outlived its time to live");
    let second_pid = second.pid();
    drop(second);
    drop(pool);
    assert_nothing_left(second_pid, runs.path());
}

#[test]
fn a_claim_with_its_own_root_runs_in_it_and_sees_nothing_else() {
    const TEST: &str = "a_claim_with_its_own_root_runs_in_it_and_sees_nothing_else";
    if !may_boot(TEST) {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let pool = Pool::new(PoolConfig::new(1, 256).runs_dir(runs.path())).unwrap();
    let own = busybox_rootfs().unwrap();
    fs::write(own.path().join("marker"), "mine\n").unwrap();
    let mut claim = pool.default_claim();
    claim.root_path = own.path().to_path_buf();
    claim.env = vec![monocore::config::EnvPair::new("GREETING", "hi")];
    claim.workdir_path = Some("/etc".into());
    let mut sandbox = pool.claim(&claim).unwrap();
    assert!(sandbox.container().is_some());
    let out = sandbox
        .run(sh(
            "cat /marker; echo $GREETING; pwd; ls -a / | grep -c monocore-sandbox",
        ))
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "mine\nhi\n/etc\n0\n",
        "{}",
        text(&out.stderr)
    );
    // Files go in and out of the sandbox's own root, and `..` leads no
    // higher than it.
    sandbox
        .files()
        .write_file("/../../in.txt", b"from the host\n", 0o600)
        .unwrap();
    let out = sandbox
        .run(sh("cat /in.txt; stat -c %a /in.txt; echo made > /out.txt"))
        .unwrap();
    assert_eq!(text(&out.stdout), "from the host\n600\n");
    assert_eq!(sandbox.files().read_file("/out.txt").unwrap(), b"made\n");
    // A command's own setting wins over the claim's.
    let out = sandbox
        .run(sh("echo $GREETING").env("GREETING", "own"))
        .unwrap();
    assert_eq!(text(&out.stdout), "own\n");
    let pid = sandbox.pid();
    drop(sandbox);
    drop(pool);
    assert_nothing_left(pid, runs.path());
    // The claim's root was copied, never changed.
    assert_eq!(
        fs::read_to_string(own.path().join("marker")).unwrap(),
        "mine\n"
    );
}

#[test]
fn a_pool_of_size_zero_is_a_typed_error_and_boots_nothing() {
    let runs = tempfile::tempdir().unwrap();
    let err = Pool::new(PoolConfig::new(0, 256).runs_dir(runs.path())).unwrap_err();
    assert!(
        matches!(
            err,
            MonocoreError::Pool(monocore::error::PoolError::Size { size: 0, .. })
        ),
        "{err:?}"
    );
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn a_pool_whose_vms_cannot_boot_says_why_at_the_claim_and_leaves_nothing() {
    let runs = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig::new(1, 256)
            .kernel(monocore::kernel::KernelChoice::Elf(
                "/nonexistent/vmlinux".into(),
            ))
            .when_empty(WhenEmpty::Wait(Duration::from_secs(60)))
            .runs_dir(runs.path()),
    )
    .unwrap();
    let started = Instant::now();
    let err = pool.claim(&pool.default_claim()).unwrap_err();
    let MonocoreError::Pool(monocore::error::PoolError::Boot(cause)) = &err else {
        panic!("not a boot failure: {err:?}")
    };
    assert!(
        monocore_suite::chain(cause.as_ref()).contains("/nonexistent/vmlinux"),
        "{}",
        monocore_suite::chain(&err)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited out the deadline"
    );
    drop(pool);
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
}
