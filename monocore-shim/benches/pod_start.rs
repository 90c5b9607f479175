//! Kubernetes pods in one microVM each, through containerd's CRI plugin as
//! kubelet drives it (a private containerd 1.6 with the CRI plugin, the
//! harness of `tests/cri.rs`), in one run:
//!
//! - `run_pod_to_first_output`: `RunPodSandbox` → `CreateContainer` →
//!   `StartContainer` → the container's first line in its CRI log file: a
//!   pod's boot, as a user waits for it;
//! - `second_container_to_first_output`: in a pod that runs, a further
//!   container's `StartContainer` → its first line in the CRI log: no boot;
//! - `exec_sync_in_the_pod`, the baseline through the same stack: in that
//!   pod's running container, the CRI `ExecSync` of `/bin/echo hi`, until
//!   its output and exit code are back (what `kubectl exec` costs);
//! - `exec_to_first_output`, the baseline without CRI: in a VM that runs
//!   (idle, its first `exec` done before measuring), `VmHandle::exec` of
//!   `/bin/echo hi` → the first byte of its output on the host.
//!
//! Runs where a CRI test can (containerd, runc's tools, root) and a VM
//! boots; elsewhere it prints why it skipped and measures nothing.
//!
//! Run: `cargo bench -p monocore-shim --bench pod_start`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    io::Read,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions};
use support::{
    BOOT_TIMEOUT, ContainerdVersion, IMAGE,
    cni::POD_IP,
    cri::{Cri, MONOCORE, may_run_cri},
    cri_log::{self, Stream},
    kubelet::Pod,
};

/// A container of `pod` that says `hi` and then waits to be stopped:
/// created, not started; its id.
fn create(cri: &Cri, pod: &Pod, pod_id: &str, name: &str) -> String {
    let config = pod
        .container(name, &cri.image_ref(), IMAGE)
        .command(&["/bin/sh", "-c", "echo hi; exec sleep 600"])
        .build();
    cri.client()
        .create_container(pod_id, &config, &pod.sandbox_config())
        .unwrap()
}

/// Starts container `id` and waits for its first line; how long that took.
fn start_to_first_line(cri: &Cri, pod: &Pod, id: &str, name: &str) -> Duration {
    let start = Instant::now();
    cri.client().start_container(id).unwrap();
    cri_log::wait_for_line(&pod.log_file(name), Stream::Stdout, "hi", BOOT_TIMEOUT);
    start.elapsed()
}

/// Stops and removes container `id`.
fn remove(cri: &Cri, id: &str) {
    cri.client().stop_container(id, Duration::ZERO).unwrap();
    cri.client().remove_container(id).unwrap();
}

fn pods(c: &mut Criterion, cri: &Cri) {
    let mut group = c.benchmark_group("pod_start");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("run_pod_to_first_output", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let pod = cri.pod(&format!("bench-{i}"), 1);
                let start = Instant::now();
                let pod_id = cri.run_pod(&pod, MONOCORE).unwrap();
                pod.write_hosts_file(POD_IP);
                let id = create(cri, &pod, &pod_id, "first");
                total += start.elapsed() + start_to_first_line(cri, &pod, &id, "first");
                cri.client().stop_pod_sandbox(&pod_id).unwrap();
                cri.client().remove_pod_sandbox(&pod_id).unwrap();
            }
            total
        })
    });
    let pod = cri.pod("bench-running", 1);
    let pod_id = cri.run_pod(&pod, MONOCORE).unwrap();
    pod.write_hosts_file(POD_IP);
    let first = create(cri, &pod, &pod_id, "first");
    start_to_first_line(cri, &pod, &first, "first");
    // The first ExecSync reads `echo` cold; the measured ones do not.
    let echo_hi = || {
        let out = cri
            .client()
            .exec_sync(&first, &["/bin/echo", "hi"], BOOT_TIMEOUT)
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
    };
    echo_hi();
    group.bench_function("exec_sync_in_the_pod", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                echo_hi();
            }
            start.elapsed()
        })
    });
    let mut n = 0u64;
    group.bench_function("second_container_to_first_output", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let name = format!("more-{n}");
                let id = create(cri, &pod, &pod_id, &name);
                total += start_to_first_line(cri, &pod, &id, &name);
                remove(cri, &id);
            }
            total
        })
    });
    cri.client().stop_pod_sandbox(&pod_id).unwrap();
    cri.client().remove_pod_sandbox(&pod_id).unwrap();
    exec_baseline(&mut group);
    group.finish();
}

/// `exec` of `/bin/echo hi` in a running VM → its first output byte.
fn exec_baseline(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let root = monocore_suite::busybox_rootfs().expect("busybox rootfs (install busybox-static)");
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 512)).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let options = SpawnOptions::new()
        .idle(true)
        .capture_console(true)
        .runs_dir(runs.path());
    let mut handle = vm.spawn_with(&options).unwrap();
    let echo = || {
        GuestCommand::new("/bin/echo")
            .arg("hi")
            .stdout(GuestOutput::Piped)
    };
    // The first exec waits for the boot.
    handle.exec(echo()).unwrap().wait_with_output().unwrap();
    group.bench_function("exec_to_first_output", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut process = handle.exec(echo()).unwrap();
                let mut byte = [0u8; 1];
                process
                    .take_stdout()
                    .unwrap()
                    .read_exact(&mut byte)
                    .unwrap();
                total += start.elapsed();
                process.wait().unwrap();
            }
            total
        })
    });
    handle.shutdown().unwrap();
}

fn bench(c: &mut Criterion) {
    let name = "pod_start";
    if !may_run_cri(name, MONOCORE, ContainerdVersion::V1_6) || !monocore_suite::may_boot(name) {
        return;
    }
    let mut cri = Cri::start(&[]);
    pods(c, &cri);
    cri.assert_nothing_left();
    cri.containerd_mut().stop();
}

criterion_group!(benches, bench);
criterion_main!(benches);
