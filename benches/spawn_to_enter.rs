//! From `MicroVm::spawn()` to the helper process reaching its
//! `krun_start_enter` call, as the helper reports it over its status pipe
//! (a `ready <ns>` line written just before entering). Each sample is a new
//! process, so the bench uses `iter_custom` with flat sampling; the VM is
//! killed as soon as the helper says it is entering.
//!
//! It includes what `spawn` does before the helper starts: resolving the
//! kernel, making the VM's private run directory with the guest agent and
//! its run spec.
//!
//! Baseline in the same run: spawning `/bin/true` with `std::process` and
//! waiting for it, the floor of any "start a process" path on this host.
//!
//! Run: `cargo bench --bench spawn_to_enter`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::vm::{MicroVm, SpawnOptions};

fn bench(c: &mut Criterion) {
    let root = monocore_suite::busybox_rootfs().expect("busybox rootfs (install busybox-static)");
    let mut config = monocore::vm::MicroVmConfig::new(root.path(), 128);
    config.exec_path = Some("/bin/true".into());
    let vm = MicroVm::from_config(config).expect("valid config");
    let runs = tempfile::tempdir().expect("runs dir");
    let options = SpawnOptions::new()
        .capture_console(true)
        .runs_dir(runs.path());

    let mut group = c.benchmark_group("spawn_to_enter");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("process_spawn_baseline", |b| {
        b.iter_custom(monocore_suite::time_host_true)
    });
    group.bench_function("spawn_to_krun_start_enter", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut handle = vm.spawn_with(&options).expect("spawn");
                let deadline = Instant::now() + Duration::from_secs(10);
                let took = loop {
                    if let Some(took) = handle.spawn_to_enter() {
                        break took;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the helper never reached krun_start_enter: {:?}",
                        handle.log_tail()
                    );
                    std::thread::sleep(Duration::from_micros(100));
                };
                handle.kill().expect("kill");
                total += took;
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
