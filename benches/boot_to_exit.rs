//! `spawn()` → the guest runs `/bin/true` → `wait()` returns, on a busybox
//! rootfs, 128 MiB, 1 vCPU. It runs wherever `monocore::host::check()` finds
//! a kernel that boots (libkrunfw's on hardware KVM, the compat kernel on
//! `kvm_pvm`, where a boot takes ~20 s: 10 samples then take ~4 minutes);
//! elsewhere it prints why it skipped (and measures nothing).
//!
//! Baseline in the same run: spawning `/bin/true` on the host with
//! `std::process` and waiting for it (a plain process, no VM), so the ratio
//! says what isolating `/bin/true` in a microVM costs.
//!
//! A third row, side by side: in a VM that is already running (started idle,
//! its first `exec` done before measuring), the time from `VmHandle::exec`
//! of `/bin/echo hi` to the first byte of its output on the host: what a
//! warm VM saves over a fresh one.
//!
//! Run: `cargo bench --bench boot_to_exit`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Read,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions};

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
    let mut warm = vm
        .spawn_with(&options.clone().idle(true))
        .expect("spawn an idle VM");
    // The first exec waits for the boot; measure only what follows.
    let first = warm
        .exec(GuestCommand::new("/bin/true"))
        .and_then(|mut p| p.wait())
        .expect("first exec in the idle VM");
    assert!(first.success(), "{first}");
    group.bench_function("exec_echo_to_first_output_in_running_vm", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut process = warm
                    .exec(
                        GuestCommand::new("/bin/echo")
                            .arg("hi")
                            .stdout(GuestOutput::Piped),
                    )
                    .expect("exec in the running VM");
                let mut stdout = process.take_stdout().expect("piped stdout");
                let mut byte = [0u8; 1];
                stdout.read_exact(&mut byte).expect("first output byte");
                total += start.elapsed();
                assert_eq!(&byte, b"h");
                let status = process.wait().expect("wait for echo");
                assert!(status.success(), "{status}");
            }
            total
        })
    });
    group.finish();
    let status = warm.shutdown().expect("shut the idle VM down");
    assert!(status.success(), "{status}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
