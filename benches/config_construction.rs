//! The same full microVM config made three ways, against a plain struct
//! literal with no validation (the baseline):
//!
//! * `vm_literal`: the `vm!` macro with literal values. Its checks ran at
//!   compile time, so it should cost what the baseline costs.
//! * `builder_validate`: the typestate builder, then `validate()`.
//! * `struct_validate`: a struct literal, then `validate()`.
//! * `struct_literal` (baseline): a struct literal, no validation.
//!
//! `validate()` includes the host checks (the root and each mapped directory
//! exist), so the rootfs and data directories are real, in a temp dir that
//! the bench makes its working directory.
//!
//! Run: `cargo bench --bench config_construction`
//!
//! Wall-clock time at this scale (hundreds of nanoseconds) moves with the
//! machine's noise; instructions do not. `scripts/count-instructions.sh`
//! runs this binary under cachegrind with `MONOCORE_COUNT=<way>:<n>`, which
//! makes it build the config `n` times one way and exit without criterion,
//! and reports instructions per config for each way.

// Bench code: a broken setup should stop the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{hint::black_box, path::PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use monocore::{
    config::{EnvPair, PathPair, PortPair},
    vm,
    vm::{LinuxRlimit, LinuxRlimitResource, LogLevel, MicroVmConfig},
};

fn with_vm_macro() -> MicroVmConfig {
    vm! {
        root: "./rootfs",
        ram: 1024,
        vcpus: 2,
        exec: "/bin/echo",
        args: ["Hello", "from a microVM"],
        env: ["GREETING=hello", "LANG=C", "EMPTY="],
        workdir: "/data",
        mapped_dirs: ["./data:/data", "./logs:/var/log"],
        port_map: ["8080:80", "8443:443"],
        rlimits: ["RLIMIT_NOFILE=1024:2048", "RLIMIT_NPROC=64:128"],
        console: "./console.log",
        local_only: false,
        log_level: Info,
    }
}

fn with_struct_literal() -> MicroVmConfig {
    MicroVmConfig {
        log_level: LogLevel::Info,
        root_path: PathBuf::from("./rootfs"),
        num_vcpus: 2,
        ram_mib: 1024,
        mapped_dirs: vec![
            PathPair::with_distinct("./data".into(), "/data".into()),
            PathPair::with_distinct("./logs".into(), "/var/log".into()),
        ],
        port_map: vec![
            PortPair::with_distinct(8080, 80),
            PortPair::with_distinct(8443, 443),
        ],
        rlimits: vec![
            LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 2048),
            LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NPROC, 64, 128),
        ],
        workdir_path: Some("/data".into()),
        exec_path: Some("/bin/echo".into()),
        args: vec!["Hello".into(), "from a microVM".into()],
        env: vec![
            EnvPair::new("GREETING", "hello"),
            EnvPair::new("LANG", "C"),
            EnvPair::new("EMPTY", ""),
        ],
        console_output: Some("./console.log".into()),
        assigned_ip: None,
        local_only: false,
        net: false,
        allow: Vec::new(),
    }
}

fn with_builder() -> MicroVmConfig {
    MicroVmConfig::builder()
        .root_path("./rootfs")
        .ram_mib(1024)
        .num_vcpus(2)
        .exec_path("/bin/echo")
        .args(["Hello", "from a microVM"])
        .env([
            EnvPair::new("GREETING", "hello"),
            EnvPair::new("LANG", "C"),
            EnvPair::new("EMPTY", ""),
        ])
        .workdir_path("/data")
        .mapped_dirs([
            PathPair::with_distinct("./data".into(), "/data".into()),
            PathPair::with_distinct("./logs".into(), "/var/log".into()),
        ])
        .port_map([
            PortPair::with_distinct(8080, 80),
            PortPair::with_distinct(8443, 443),
        ])
        .rlimits([
            LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 2048),
            LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NPROC, 64, 128),
        ])
        .console_output("./console.log")
        .local_only(false)
        .log_level(LogLevel::Info)
        .build()
}

/// One way of making the config, by its benchmark name.
fn make(way: &str) -> Option<MicroVmConfig> {
    Some(match way {
        "struct_literal" => with_struct_literal(),
        "vm_literal" => with_vm_macro(),
        "builder_validate" => {
            let config = with_builder();
            config.validate().map(|()| config).ok()?
        }
        "struct_validate" => {
            let config = with_struct_literal();
            config.validate().map(|()| config).ok()?
        }
        _ => panic!("unknown way {way:?}"),
    })
}

/// `MONOCORE_COUNT=<way>:<n>`: make the config `n` times, for an
/// instruction count (see the module docs). Runs in the prepared directory.
fn count_mode() -> Option<(String, u64)> {
    let spec = std::env::var("MONOCORE_COUNT").ok()?;
    let (way, n) = spec.split_once(':').expect("MONOCORE_COUNT=<way>:<n>");
    Some((way.to_owned(), n.parse().expect("a count")))
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["rootfs", "data", "logs"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    std::env::set_current_dir(dir.path()).expect("chdir");

    // The three ways make the same, valid config.
    assert_eq!(with_vm_macro(), with_struct_literal());
    assert_eq!(with_builder(), with_struct_literal());
    with_struct_literal()
        .validate()
        .expect("the bench config is valid");

    if let Some((way, n)) = count_mode() {
        for _ in 0..n {
            black_box(make(black_box(&way)).expect("valid"));
        }
        std::process::exit(0);
    }

    let mut group = c.benchmark_group("config_construction");
    group.bench_function("struct_literal", |b| {
        b.iter(|| black_box(with_struct_literal()))
    });
    group.bench_function("vm_literal", |b| b.iter(|| black_box(with_vm_macro())));
    group.bench_function("builder_validate", |b| {
        b.iter(|| {
            let config = with_builder();
            config.validate().map(|()| black_box(config))
        })
    });
    group.bench_function("struct_validate", |b| {
        b.iter(|| {
            let config = with_struct_literal();
            config.validate().map(|()| black_box(config))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
