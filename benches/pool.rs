//! The warm pool (`monocore::pool`), side by side with what it replaces,
//! in one run:
//!
//! - `first_byte/pool_claim`: `Pool::claim` of a booted VM → `exec` of
//!   `/bin/echo hi` → its first output byte on the host (the pool's
//!   replacement VM starts booting at the claim, as it does for a user);
//! - `first_byte/pool_claim_own_root`: the same with a root of the
//!   claim's own (a busybox tree, copied into the VM's share and prepared
//!   as the sandbox's container at the claim);
//! - `first_byte/exec_running_vm`: `exec` of the same command into a VM
//!   already running → its first byte: the goal's baseline;
//! - `first_byte/cold_spawn`: `spawn` of a new VM → `exec` of the same
//!   command → its first byte: what a claim saves.
//!
//! - `files/write_read_1mib`: `write_file` of 1 MiB then `read_file` of it
//!   back, through the agent's control channel of a running VM (no shared
//!   directory).
//!
//! Each claim's sandbox is dropped, and the pool refilled, outside the
//! timed part. It runs where real boots run; elsewhere it prints why it
//! skipped. Run: `cargo bench --bench pool -- --noplot`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::Read,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::{
    pool::{Pool, PoolConfig, Sandbox, WhenEmpty},
    vm::{GuestCommand, GuestOutput, GuestProcess, MicroVm, MicroVmConfig, SpawnOptions},
};

const READY: Duration = Duration::from_secs(300);

fn echo() -> GuestCommand {
    GuestCommand::new("/bin/echo")
        .arg("hi")
        .stdout(GuestOutput::Piped)
}

/// Waits for the first byte of `process`'s stdout, then for its end.
fn first_byte(mut process: GuestProcess, start: Instant) -> Duration {
    let mut byte = [0u8; 1];
    process
        .take_stdout()
        .unwrap()
        .read_exact(&mut byte)
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(&byte, b"h");
    assert!(process.wait().unwrap().success());
    elapsed
}

/// Claims a sandbox for `claim` (once the pool has a VM ready) and times
/// claim → echo's first byte.
fn time_claim(pool: &Pool, claim: &MicroVmConfig) -> Duration {
    assert!(
        pool.wait_ready(1, READY).unwrap(),
        "the pool did not refill"
    );
    let start = Instant::now();
    let mut sandbox: Sandbox = pool.claim(claim).unwrap();
    assert!(sandbox.was_warm());
    let process = sandbox.exec(echo()).unwrap();
    first_byte(process, start)
}

fn bench(c: &mut Criterion) {
    if !monocore_suite::may_boot("pool") {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let pool = Pool::new(
        PoolConfig::new(1, 256)
            .when_empty(WhenEmpty::Wait(READY))
            .runs_dir(runs.path()),
    )
    .unwrap();
    let own_root = monocore_suite::busybox_rootfs().unwrap();
    let mut own = pool.default_claim();
    own.root_path = own_root.path().to_path_buf();

    let root = monocore_suite::busybox_rootfs().unwrap();
    let config = MicroVmConfig::new(root.path(), 256);
    let options = SpawnOptions::new()
        .capture_console(true)
        .idle(true)
        .runs_dir(runs.path());
    let vm = MicroVm::from_config(config).unwrap();
    let mut running = vm.spawn_with(&options).unwrap();
    running.wait_ready(READY).unwrap();

    let mut group = c.benchmark_group("first_byte");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("pool_claim", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_claim(&pool, &pool.default_claim()))
                .sum()
        })
    });
    group.bench_function("pool_claim_own_root", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| time_claim(&pool, &own)).sum())
    });
    group.bench_function("exec_running_vm", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    first_byte(running.exec(echo()).unwrap(), start)
                })
                .sum()
        })
    });
    group.bench_function("cold_spawn", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    // The pool is full and idle: nothing boots beside this.
                    assert!(pool.wait_ready(1, READY).unwrap());
                    let start = Instant::now();
                    let mut handle = vm.spawn_with(&options).unwrap();
                    let elapsed = first_byte(handle.exec(echo()).unwrap(), start);
                    handle.kill().unwrap();
                    elapsed
                })
                .sum()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("files");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(criterion::Throughput::Bytes(2 << 20));
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    group.bench_function("write_read_1mib", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    running
                        .files()
                        .write_file("/tmp/bench.bin", &data, 0o600)
                        .unwrap();
                    let back = running.files().read_file("/tmp/bench.bin").unwrap();
                    let elapsed = start.elapsed();
                    assert!(back == data, "1 MiB came back changed");
                    elapsed
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
