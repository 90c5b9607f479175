//! A crate that depends on monocore as a user's crate does
//! (`tests/downstream/`: one dependency line, its own workspace and lock
//! file): its `cargo test` and its example, the README's "Use monocore as a
//! library" program, run in debug and in release, and its programs work
//! `cargo install`ed. Nothing is built or set up for it but the dependency,
//! so this shows that `spawn` works out of the box in test harnesses,
//! programs and examples that link monocore.
//!
//! Its build is kept in `target/downstream` (its own directory: cargo
//! locks a target directory while it builds, and this test runs inside the
//! workspace's build), so only the first run compiles it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use monocore_suite::live_children;

/// The README's library example; the test checks the README shows it as is.
const EXAMPLE: &str = "tests/downstream/examples/hello.rs";

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/downstream")
}

/// `target/downstream`, next to the workspace's own build.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).with_file_name("downstream")
}

/// Says what runs, past the test harness's capture: the first run compiles
/// the crate twice and takes minutes.
fn progress(line: &str) {
    let _ = writeln!(std::io::stderr(), "downstream: {line}");
}

/// Runs cargo on the downstream crate, offline and with its lock file.
fn cargo(args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(args)
        .args(["--locked", "--offline"])
        .current_dir(crate_dir())
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Passes the downstream tests' `SKIPPED` lines on.
fn forward_skips(output: &str) {
    for line in output.lines().filter(|l| l.contains("SKIPPED")) {
        progress(line);
    }
}

fn cargo_test(profile: &[&str], name: &str) {
    progress(&format!("cargo test ({name})"));
    let out = cargo(&[&["test"], profile].concat());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    forward_skips(&stderr);
    assert!(
        out.status.success(),
        "cargo test ({name}) failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Every test ran: none was filtered or ignored.
    assert!(
        stdout.contains("test result: ok. 5 passed; 0 failed; 0 ignored"),
        "{stdout}"
    );
}

fn cargo_run_example(profile: &[&str], name: &str) {
    progress(&format!("cargo run --example hello ({name})"));
    let out = cargo(&[&["run", "--example", "hello"], profile].concat());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let host = monocore::host::check();
    if host.can_boot() {
        assert_eq!(
            out.status.code(),
            Some(0),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        assert_eq!(
            stdout.replace('\r', ""),
            "Hello from inside a microVM\n(guest exited with code 0)\n",
            "stderr: {stderr}"
        );
    } else {
        // Allowed where no VM can boot: the error that says why (a boot
        // failure, no usable kernel, …), printed by `Display`, and exit
        // code 1; but never one about the VM helper itself.
        assert_eq!(
            out.status.code(),
            Some(1),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        assert!(stderr.lines().any(|l| l.starts_with("error: ")), "{stderr}");
        assert!(
            !stderr.contains("VM helper"),
            "the helper did not start: {stderr}"
        );
        progress(&format!(
            "SKIPPED (partly): the example ({name}) ends in an error: this host cannot boot a \
             VM: {:?}; the example said: {}",
            host.boot_blocker().map(ToString::to_string),
            stderr.lines().last().unwrap_or_default()
        ));
    }
}

/// `cargo install`s the crate's programs (reusing the release build) and
/// runs the installed `spawner`, which reaches the VMM from where it was
/// installed.
fn cargo_install_and_run() {
    progress("cargo install --path . (release), then run the installed program");
    let root = tempfile::tempdir().unwrap();
    let out = cargo(&[
        "install",
        "--path",
        ".",
        "--root",
        root.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ran = root.path().join("ran");
    let out = Command::new(root.path().join("bin/spawner"))
        .args([ran.to_str().unwrap(), "vmm"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.starts_with(
            "reached the VMM: Err(\"libkrun call krun_start_enter failed with errno 22"
        ),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "main\n");
}

#[test]
fn a_downstream_crate_spawns_vms_in_debug_and_release() {
    for (profile, name) in [(&[][..], "debug"), (&["--release"][..], "release")] {
        cargo_test(profile, name);
        cargo_run_example(profile, name);
    }
    cargo_install_and_run();
    assert_eq!(live_children(), vec![], "processes left behind");
}

#[test]
fn the_readme_shows_the_downstream_example_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join(EXAMPLE)).unwrap();
    let block = format!("```rust,no_run\n{example}```\n");
    assert!(
        readme.contains(&block),
        "README.md must show {EXAMPLE} verbatim in a ```rust,no_run block (a doctest, so it \
         compiles as written)"
    );
}
