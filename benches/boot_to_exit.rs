//! `spawn()` → the guest runs `/bin/true` → `wait()` returns, on a busybox
//! rootfs, 128 MiB, 1 vCPU. It runs wherever `monocore::host::check()` finds
//! a kernel that boots (libkrunfw's on hardware KVM, the compat kernel on
//! `kvm_pvm`, where a boot takes ~17 s: 10 samples then take ~3 minutes);
//! elsewhere it prints why it skipped (and measures nothing).
//!
//! Baseline in the same run: spawning `/bin/true` on the host with
//! `std::process` and waiting for it (a plain process, no VM), so the ratio
//! says what isolating `/bin/true` in a microVM costs.
//!
//! Run: `cargo bench --bench boot_to_exit`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::vm::{MicroVm, MicroVmConfig, SpawnOptions};

fn bench(c: &mut Criterion) {
    if !monocore_suite::may_boot("boot_to_exit") {
        return;
    }
    let root = monocore_suite::busybox_rootfs().expect("busybox rootfs (install busybox-static)");
    let mut config = MicroVmConfig::new(root.path(), 128);
    config.exec_path = Some("/bin/true".into());
    let vm = MicroVm::from_config(config).expect("valid config");
    let runs = tempfile::tempdir().expect("runs dir");
    let options = SpawnOptions::new()
        .capture_console(true)
        .runs_dir(runs.path());

    let mut group = c.benchmark_group("boot_to_exit");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("process_spawn_baseline", |b| {
        b.iter_custom(monocore_suite::time_host_true)
    });
    group.bench_function("boot_true_and_exit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let status = vm
                    .spawn_with(&options)
                    .and_then(|mut h| h.wait())
                    .expect("boot /bin/true");
                total += start.elapsed();
                assert!(status.success(), "{status}");
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
