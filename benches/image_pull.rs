//! Pull + unpack of a ~50 MB, 5-layer image from a registry on 127.0.0.1
//! (Debian's `docker-registry`, started here), cold (empty cache) and warm
//! (everything cached).
//!
//! * `monocore_cold`: `monocore::image::pull_image` into an empty cache:
//!   resolve, download and verify every blob, unpack the layers (diff IDs
//!   checked) into the cache: the same work as the baseline.
//! * `monocore_cold_with_vm_copy`: `monocore::image::pull`, which also makes
//!   the VM's private copy of the root (what `monocore run` does).
//! * `skopeo_umoci_cold` (baseline, same run): `skopeo copy` of the same
//!   image into an empty OCI layout, then `umoci unpack` into a bundle.
//! * `monocore_warm`: the same `pull` with everything cached: no request to
//!   the registry, only the VM's private copy.
//! * `skopeo_umoci_warm`: `skopeo copy` into the layout that already holds
//!   the blobs (skopeo skips them), then `umoci unpack` again (umoci has no
//!   cache of unpacked roots).
//!
//! The image: a busybox layer and four layers of 1 000 files each (about
//! 12 KB of text-like data per file: ~50 MB unpacked).
//!
//! Nothing is removed while the group runs (every iteration's directories
//! are kept until the end): on ext4, creating files soon after many were
//! deleted is slow (inode allocation skips recently deleted inodes, a scan
//! that dominated an earlier version of this benchmark), which would make
//! whichever function runs later look slower.
//!
//! Run: `cargo bench --bench image_pull -- --noplot`

// Bench code: a broken setup should stop the run with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::image::{self, PullOptions};
use monocore_suite::{
    oci::{Image, Pusher, Tar, busybox_layer},
    registry::TestRegistry,
    skip,
};
use serde_json::json;

/// Text-like bytes: a fixed pseudo-random sequence over 64 symbols.
fn data(seed: u64, len: usize) -> Vec<u8> {
    const SYMBOLS: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            SYMBOLS[(state >> 58) as usize]
        })
        .collect()
}

fn bench_image() -> Image {
    let mut layers = vec![busybox_layer().unwrap()];
    for layer in 0..4u64 {
        let mut tar = Tar::new();
        tar.dir(&format!("data{layer}/"));
        for file in 0..1000u64 {
            if file % 100 == 0 {
                tar.dir(&format!("data{layer}/d{}/", file / 100));
            }
            let len = 4_000 + (file as usize * 7919) % 16_000;
            tar.file(
                &format!("data{layer}/d{}/f{file}", file / 100),
                &data(layer * 10_000 + file, len),
            );
        }
        layers.push(tar);
    }
    let refs: Vec<&Tar> = layers.iter().collect();
    Image::new(&refs, json!({"Cmd": ["/bin/sh"]}))
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn skopeo_umoci(registry: &TestRegistry, layout: &Path, bundle: &Path) {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{}/bench/image:v1", registry.host()))
        .arg(format!("oci:{}:v1", layout.display())));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(bundle));
}

fn bench(c: &mut Criterion) {
    let registry = match TestRegistry::start() {
        Ok(registry) => registry,
        Err(reason) => return skip("image_pull", &reason),
    };
    let baseline = tool("skopeo") && tool("umoci");
    if !baseline {
        skip(
            "image_pull (skopeo_umoci_*)",
            "skopeo or umoci is missing: ./scripts/setup.sh installs them",
        );
    }
    let built = bench_image().build().unwrap();
    let compressed: usize = built.blobs.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "image_pull: {} layers, {:.1} MB compressed, {:.1} MB unpacked",
        built.layer_digests.len(),
        compressed as f64 / 1e6,
        bench_image()
            .layers
            .iter()
            .map(|(t, _)| t.len())
            .sum::<usize>() as f64
            / 1e6
    );
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("bench/image", "v1", &built)
        .unwrap();
    let reference = format!("{}/bench/image:v1", registry.host());
    let scratch = tempfile::tempdir().unwrap();
    let options = |cache: &Path| PullOptions {
        cache_dir: Some(cache.join("images")),
        runs_dir: Some(cache.join("runs")),
        docker_config: Some(Default::default()),
        ..PullOptions::default()
    };

    // Removed only at the end; see the module docs.
    let mut keep_dirs: Vec<tempfile::TempDir> = Vec::new();
    let mut keep_roots: Vec<image::ImageRootfs> = Vec::new();
    let mut group = c.benchmark_group("image_pull");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("monocore_cold", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = tempfile::tempdir_in(scratch.path()).unwrap();
                let start = Instant::now();
                image::pull_image(&reference, &options(cache.path())).unwrap();
                total += start.elapsed();
                keep_dirs.push(cache);
            }
            total
        })
    });
    if baseline {
        group.bench_function("skopeo_umoci_cold", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(scratch.path()).unwrap();
                    let start = Instant::now();
                    skopeo_umoci(
                        &registry,
                        &dir.path().join("layout"),
                        &dir.path().join("bundle"),
                    );
                    total += start.elapsed();
                    keep_dirs.push(dir);
                }
                total
            })
        });
    }
    group.bench_function("monocore_cold_with_vm_copy", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = tempfile::tempdir_in(scratch.path()).unwrap();
                let start = Instant::now();
                let rootfs = image::pull(&reference, &options(cache.path())).unwrap();
                total += start.elapsed();
                keep_roots.push(rootfs);
                keep_dirs.push(cache);
            }
            total
        })
    });
    let warm = tempfile::tempdir_in(scratch.path()).unwrap();
    keep_roots.push(image::pull(&reference, &options(warm.path())).unwrap());
    group.bench_function("monocore_warm", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let rootfs = image::pull(&reference, &options(warm.path())).unwrap();
                total += start.elapsed();
                keep_roots.push(rootfs);
            }
            total
        })
    });
    if baseline {
        let layout = warm.path().join("layout");
        skopeo_umoci(&registry, &layout, &warm.path().join("bundle0"));
        group.bench_function("skopeo_umoci_warm", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let bundle = tempfile::tempdir_in(scratch.path()).unwrap();
                    let start = Instant::now();
                    skopeo_umoci(&registry, &layout, &bundle.path().join("bundle"));
                    total += start.elapsed();
                    keep_dirs.push(bundle);
                }
                total
            })
        });
    }
    group.finish();
    drop(keep_roots);
    drop(keep_dirs);
}

criterion_group!(benches, bench);
criterion_main!(benches);
