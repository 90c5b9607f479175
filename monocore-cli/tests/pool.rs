//! `monocore pool start` and `monocore run --pool`, with the real binary
//! and real boots in a private cache: a claim runs its command with no
//! boot and exits with its code, bad claims are errors that name the
//! value, Ctrl-C of a pooled run and SIGTERM or `kill -9` of the pool
//! leave nothing behind. They run where a VM can boot; elsewhere each
//! prints `SKIPPED` (or fails, with `MONOCORE_REQUIRE_BOOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{BufRead, BufReader},
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

mod common;

use common::{monocore_in, private_cache};
use monocore_suite::{may_boot, wait_until_gone};

/// Starts `monocore pool start NAME --size 1` in `cwd` and waits until
/// it says its VM is ready.
fn start_pool(cache: &Path, cwd: &Path, name: &str) -> Child {
    let mut pool = monocore_in(cache)
        .args(["pool", "start", "--size", "1", name])
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = pool.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the pool never said it was ready");
    assert_eq!(line, format!("pool {name}: 1 VM ready"));
    pool
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn leftovers(cache: &Path) -> Vec<String> {
    ["runs", "vms", "pools"]
        .iter()
        .flat_map(|sub| {
            std::fs::read_dir(cache.join(sub))
                .into_iter()
                .flatten()
                .map(move |e| format!("{sub}/{}", e.unwrap().file_name().display()))
        })
        .collect()
}

#[test]
fn run_pool_claims_a_booted_vm_and_sigterm_ends_the_pool_and_leaves_nothing() {
    let test = "run_pool_claims_a_booted_vm_and_sigterm_ends_the_pool_and_leaves_nothing";
    if !may_boot(test) {
        return;
    }
    let cache = private_cache();
    let cwd = tempfile::tempdir().unwrap();
    let mut pool = start_pool(cache.path(), cwd.path(), "t");

    let out = monocore_in(cache.path())
        .args([
            "run",
            "--pool",
            "t",
            "--",
            "/bin/sh",
            "-c",
            "echo hi; exit 3",
        ])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = monocore_in(cache.path())
        .args(["run", "--pool", "t", "--ram", "1G", "--", "true"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr.contains("asks for 1024 MiB of RAM; this pool's VMs have 256 MiB"),
        "{stderr}"
    );
    let out = monocore_in(cache.path())
        .args(["run", "--pool", "nope", "--", "true"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pool nope is running"));

    // Ctrl-C of a pooled run: 130, and its sandbox is destroyed.
    let run = monocore_in(cache.path())
        .args(["run", "--pool", "t", "--", "sleep", "300"])
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(300);
    // The claim is served once the pool has its replacement booting and
    // the sandbox's VM runs `sleep`: wait for two VM directories.
    while std::fs::read_dir(cache.path().join("vms")).map_or(0, |d| d.count()) < 2 {
        assert!(Instant::now() < until, "the pool never refilled");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    signal(&run, libc::SIGINT);
    let status = run.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130), "{status:?}");

    signal(&pool, libc::SIGTERM);
    let status = pool.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(
        wait_until_gone(cwd.path()),
        Vec::<u32>::new(),
        "processes left"
    );
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}

#[test]
fn kill_9_of_the_pool_ends_its_vms_and_the_next_pool_sweeps_and_replaces_its_socket() {
    let test = "kill_9_of_the_pool_ends_its_vms_and_the_next_pool_sweeps_and_replaces_its_socket";
    if !may_boot(test) {
        return;
    }
    let cache = private_cache();
    let cwd = tempfile::tempdir().unwrap();
    let mut pool = start_pool(cache.path(), cwd.path(), "k");
    signal(&pool, libc::SIGKILL);
    assert_eq!(pool.wait().unwrap().signal(), Some(libc::SIGKILL));
    // Each VM's helper sees its lifeline end and ends the VM.
    let until = Instant::now() + Duration::from_secs(30);
    while !monocore_suite::processes_in(cwd.path()).is_empty() {
        assert!(Instant::now() < until, "VMs outlived their pool");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The socket the killed pool left is replaced; its directories swept.
    let mut again = start_pool(cache.path(), cwd.path(), "k");
    signal(&again, libc::SIGINT);
    assert_eq!(again.wait().unwrap().code(), Some(0));
    assert_eq!(
        wait_until_gone(cwd.path()),
        Vec::<u32>::new(),
        "processes left"
    );
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}
