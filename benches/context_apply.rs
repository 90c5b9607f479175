//! Create a libkrun context, apply a full config (5 mapped dirs, 10 ports,
//! 10 env vars, 5 rlimits) and free it. No boot. (5 mapped dirs, not 10:
//! libkrun 1.19.7 on x86_64 has interrupt lines for at most 5 more virtio-fs
//! shares next to networking, the VM's private root and the root
//! filesystem, and monocore refuses more up front.) This includes making the
//! VM's private run directory (a locked directory, the 1.1 MB guest agent
//! and its run spec) and removing it, which are part of applying a config.
//! libkrunfw's kernel is named, since the config uses networking.
//!
//! Baseline in the same run: a bare `krun_create_ctx` + `krun_free_ctx`, the
//! floor that any apply pays.
//!
//! Run: `cargo bench --bench context_apply`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use monocore::{
    config::{EnvPair, PathPair, PortPair},
    kernel::KernelChoice,
    vm::{LinuxRlimit, MicroVm, MicroVmConfig},
};

fn bench(c: &mut Criterion) {
    let root = monocore_suite::busybox_rootfs().expect("busybox rootfs (install busybox-static)");
    let shares = tempfile::tempdir().expect("temp dir");
    let mut config = MicroVmConfig::new(root.path(), 256);
    config.mapped_dirs = (0..5)
        .map(|i| {
            let host = shares.path().join(format!("share-{i}"));
            std::fs::create_dir(&host).expect("mkdir");
            format!("{}:/srv/shares/s{i}", host.display())
                .parse::<PathPair>()
                .expect("pair")
        })
        .collect();
    config.local_only = false; // ports need TSI; see the README's networking notes
    config.port_map = (0..10)
        .map(|i| PortPair::with_distinct(18080 + i, 80 + i))
        .collect();
    config.env = (0..10)
        .map(|i| EnvPair::new(format!("VAR_{i}"), format!("value-{i}")))
        .collect();
    config.rlimits = [
        "RLIMIT_NOFILE=1024:2048",
        "RLIMIT_NPROC=64:128",
        "RLIMIT_CORE=0:0",
        "RLIMIT_STACK=8388608:8388608",
        "RLIMIT_AS=1073741824:1073741824",
    ]
    .iter()
    .map(|s| s.parse::<LinuxRlimit>().expect("rlimit"))
    .collect();
    config.exec_path = Some("/bin/true".into());
    let vm = MicroVm::from_config(config).expect("valid config");
    let kernel = KernelChoice::Libkrunfw;
    drop(
        vm.prepare_with_kernel(&kernel)
            .expect("the full config applies"),
    );

    let mut group = c.benchmark_group("context_apply");
    group.bench_function("create_free_baseline", |b| {
        b.iter(|| {
            let ctx = krun::krun_create_ctx();
            assert!(ctx >= 0);
            black_box(krun::krun_free_ctx(ctx as u32))
        })
    });
    group.bench_function("full_config", |b| {
        b.iter(|| black_box(vm.prepare_with_kernel(&kernel).expect("apply")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
