//! Guest-path overlap check: monocore's O(n log n) sort-and-compare-neighbours
//! check against a reference copy of the seed's (monocore 0.2.1) pairwise
//! O(n²) check, on the same realistic inputs: deep paths sharing long
//! prefixes, none overlapping (the worst case for both: no early exit).
//!
//! Run: `cargo bench --bench guest_path_validation`

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use monocore_rules::{find_overlap, normalize_mount_point, paths_overlap};

/// `n` normalized mount points like `/srv/tenants/t-042/apps/app-17/volumes/v-3`:
/// deep, with shared prefixes, and no two overlapping.
fn realistic_paths(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let raw = format!(
                "/srv/tenants/t-{:03}/apps/./app-{:02}/volumes//v-{}",
                i / 1000,
                (i / 10) % 100,
                i % 10
            );
            normalize_mount_point(&raw).unwrap_or(raw)
        })
        .collect()
}

/// The seed's check, kept here as the baseline: compare every pair.
fn pairwise_reference(paths: &[String]) -> Option<(usize, usize)> {
    for (i, a) in paths.iter().enumerate() {
        for (j, b) in paths.iter().enumerate().skip(i + 1) {
            if paths_overlap(a, b) {
                return Some((i, j));
            }
        }
    }
    None
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("guest_path_validation");
    group.sample_size(10);
    for n in [10usize, 100, 1_000, 10_000] {
        let paths = realistic_paths(n);
        assert_eq!(find_overlap(&paths), None);
        assert_eq!(pairwise_reference(&paths), None);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("sorted_neighbours", n), &paths, |b, p| {
            b.iter(|| find_overlap(black_box(p)))
        });
        group.bench_with_input(BenchmarkId::new("pairwise_reference", n), &paths, |b, p| {
            b.iter(|| pairwise_reference(black_box(p)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
