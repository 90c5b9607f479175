//! The Python package against the Rust API on the same work, in one run:
//!
//! - `python_vs_rust/sandbox_run_echo/{python,rust}`: a new sandbox (a
//!   private copy of the busybox root, a VM booted idle at 256 MiB, its
//!   agent answering), `echo hi` run in it with its output collected, and
//!   the sandbox killed. Python: `with Sandbox(ram=256) as sb:
//!   sb.run("echo hi")`. Rust: the library calls the package makes
//!   (`RunRootfs::busybox`, `spawn_with(idle)`, `wait_ready`, `exec`,
//!   `kill`), from this program.
//! - `python_vs_rust/run_echo/{python,rust}`: `echo hi` in a sandbox that
//!   is already running: the binding's own cost per command.
//!
//! The Python side is a child interpreter that does one unit of work per
//! line it reads and answers `ok`; its time is measured here, from the
//! line written to the answer read (a pipe's round trip, microseconds,
//! against seconds of work). The interpreter is `MONOCORE_PYTHON`, or the
//! venv that `scripts/test-python.sh` makes (`target/python-venv`), which
//! has the package installed. Without one, or on a host that cannot boot,
//! it prints why and measures nothing.
//!
//! Run: `./scripts/test-python.sh && cargo bench --bench python -- --noplot`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monocore::{
    rootfs::RunRootfs,
    vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions, VmHandle},
};

const READY: Duration = Duration::from_secs(300);

/// The Python side: `new` makes, runs in and kills a sandbox; `run` runs
/// in the one sandbox it keeps.
const DRIVER: &str = r#"
import sys
from monocore import Sandbox
kept = Sandbox(ram=256)
for line in sys.stdin:
    if line == "new\n":
        with Sandbox(ram=256) as sb:
            out = sb.run("echo hi").stdout
    else:
        out = kept.run("echo hi").stdout
    assert out == "hi\n", out
    print("ok", flush=True)
kept.kill()
"#;

struct Driver {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Driver {
    fn start(python: &PathBuf) -> Self {
        let mut child = Command::new(python)
            .args(["-c", DRIVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
        }
    }

    /// One unit of work (`new` or `run`), timed from here.
    fn time(&mut self, what: &str) -> Duration {
        let start = Instant::now();
        writeln!(self.input.as_mut().unwrap(), "{what}").unwrap();
        let mut answer = String::new();
        self.output.read_line(&mut answer).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(
            answer, "ok\n",
            "the Python driver failed (its stderr is above)"
        );
        elapsed
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // End of input: it kills its sandbox and exits.
        drop(self.input.take());
        let _ = self.child.wait();
    }
}

/// The Rust side of `sandbox_run_echo`: what `monocore.Sandbox(ram=256)`
/// and its `run("echo hi")` and `kill()` call.
fn rust_sandbox() -> (VmHandle, RunRootfs) {
    let root = RunRootfs::busybox().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 256)).unwrap();
    let options = SpawnOptions::new().idle(true).capture_console(true);
    let mut handle = vm.spawn_with(&options).unwrap();
    handle.wait_ready(READY).unwrap();
    (handle, root)
}

fn rust_run_echo(handle: &mut VmHandle) {
    let command = GuestCommand::new("/bin/sh")
        .args(["-c", "echo hi"])
        .stdout(GuestOutput::Piped)
        .stderr(GuestOutput::Piped);
    let mut process = handle.exec(command).unwrap();
    let mut stdout = process.take_stdout().unwrap();
    let mut stderr = process.take_stderr().unwrap();
    let mut out = Vec::new();
    let err_thread = std::thread::spawn(move || {
        let mut err = Vec::new();
        stderr.read_to_end(&mut err).unwrap();
        err
    });
    stdout.read_to_end(&mut out).unwrap();
    err_thread.join().unwrap();
    assert!(process.wait().unwrap().success());
    assert_eq!(out, b"hi\n");
}

fn python() -> Option<PathBuf> {
    let path = match std::env::var_os("MONOCORE_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/python-venv/bin/python"),
    };
    let has_package = Command::new(&path)
        .args(["-c", "import monocore"])
        .status()
        .is_ok_and(|s| s.success());
    if has_package {
        Some(path)
    } else {
        eprintln!(
            "python_vs_rust: SKIPPED: {} has no monocore package; run ./scripts/test-python.sh \
             (which makes that venv) or set MONOCORE_PYTHON",
            path.display()
        );
        None
    }
}

fn bench(c: &mut Criterion) {
    if !monocore_suite::may_boot("python_vs_rust") {
        return;
    }
    let Some(python) = python() else { return };
    let mut driver = Driver::start(&python);
    let (mut kept, _kept_root) = rust_sandbox();

    let mut group = c.benchmark_group("python_vs_rust");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("sandbox_run_echo/python", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| driver.time("new")).sum())
    });
    group.bench_function("sandbox_run_echo/rust", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    let (mut handle, root) = rust_sandbox();
                    rust_run_echo(&mut handle);
                    handle.kill().unwrap();
                    drop(root);
                    start.elapsed()
                })
                .sum()
        })
    });
    group.bench_function("run_echo/python", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| driver.time("run")).sum())
    });
    group.bench_function("run_echo/rust", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    rust_run_echo(&mut kept);
                    start.elapsed()
                })
                .sum()
        })
    });
    group.finish();
    kept.kill().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
