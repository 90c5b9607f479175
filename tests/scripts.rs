//! The set-up scripts on a fresh machine: `scripts/build-compat-kernel.sh`
//! and `scripts/setup.sh` with an empty `MONOCORE_CACHE_DIR`, the first run
//! a new user (and CI on a fresh machine) makes.
//!
//! The kernel build itself takes minutes, so these tests select the
//! script's stub build (`MONOCORE_KERNEL_BUILD_STUB`): everything else
//! (the lock, the scratch and staging directories, the stamp, the
//! verification, the exit traps) is the script's real code. A stub kernel's
//! stamp names a recipe of its own, so it never passes for the real one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const STUB_ENV: &str = "MONOCORE_KERNEL_BUILD_STUB";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// The kernel build script with `cache` as `MONOCORE_CACHE_DIR`.
fn build_kernel(cache: &Path, stub: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(script("build-compat-kernel.sh"));
    command.args(args).env("MONOCORE_CACHE_DIR", cache);
    match stub {
        Some(stub) => command.env(STUB_ENV, stub),
        None => command.env_remove(STUB_ENV),
    };
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("the script runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the script left in the kernel directory besides the installed
/// kernel and its lock file: scratch, staging and old directories.
fn leftovers(cache: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(cache.join("kernel")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "compat" && name != ".build.lock")
        .collect()
}

#[test]
fn a_first_build_on_an_empty_cache_exits_0_with_a_verified_kernel() {
    let cache = tempfile::tempdir().unwrap();
    let out = run(build_kernel(cache.path(), Some("ok"), &[]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "first build: {stderr}");
    assert!(stderr.contains("installed"), "{stderr}");
    let compat = cache.path().join("kernel/compat");
    for file in ["vmlinux", "System.map", "config", "stamp"] {
        assert!(compat.join(file).is_file(), "{file} missing: {stderr}");
    }
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());

    // The second run reuses it, and --check verifies it: both exit 0.
    let out = run(build_kernel(cache.path(), Some("ok"), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("up to date"));
    let out = run(build_kernel(cache.path(), Some("ok"), &["--check"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A stub kernel never passes for the real one.
    let out = run(build_kernel(cache.path(), None, &["--check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("another recipe"));

    // A vmlinux that changed after the build no longer verifies.
    std::fs::write(compat.join("vmlinux"), b"tampered").unwrap();
    let out = run(build_kernel(cache.path(), Some("ok"), &["--check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("does not match its stamp"));
}

#[test]
fn check_on_an_empty_cache_exits_1_and_builds_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let out = run(build_kernel(cache.path(), Some("ok"), &["--check"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no compat kernel installed"));
    assert!(!cache.path().join("kernel/compat").exists());
}

#[test]
fn a_failed_build_exits_with_its_status_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let out = run(build_kernel(cache.path(), Some("fail"), &[]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!cache.path().join("kernel/compat").exists());
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}

#[test]
fn a_build_ended_by_sigterm_exits_143_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let mut command = build_kernel(cache.path(), Some("hang"), &[]);
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build is under way (its scratch directory exists).
    let deadline = Instant::now() + Duration::from_secs(60);
    while leftovers(cache.path()).is_empty() {
        assert!(Instant::now() < deadline, "the stub build never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}

#[test]
fn a_build_after_one_that_was_killed_sweeps_its_remains() {
    let cache = tempfile::tempdir().unwrap();
    let kernel = cache.path().join("kernel");
    // What kill -9 during a build leaves: no trap ran.
    for dir in [".build-dead", ".staging-dead", ".old-dead"] {
        std::fs::create_dir_all(kernel.join(dir).join("linux-source")).unwrap();
    }
    let out = run(build_kernel(cache.path(), Some("ok"), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(leftovers(cache.path()), Vec::<String>::new());
}

/// `setup.sh` on an empty cache, as the README's two commands run it on a
/// fresh machine: it must end with `setup: ok` and exit 0, so that the
/// command after `&&` runs. Here the packages are already installed (the
/// README's test command runs `setup.sh` before `cargo test`), so only its
/// kernel step has work to do.
#[test]
fn setup_on_an_empty_cache_ends_with_ok_and_exits_0() {
    let cache = tempfile::tempdir().unwrap();
    let out = run({
        let mut command = Command::new(script("setup.sh"));
        command
            .arg("--compat-kernel")
            .env("MONOCORE_CACHE_DIR", cache.path())
            .env_remove("MONOCORE_CONTAINERD2_DIR")
            .env(STUB_ENV, "ok");
        command
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "setup.sh failed on an empty cache:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("setup: ok") && last.contains("compat kernel"),
        "{stdout}\n{stderr}"
    );
    // containerd 2.1, unpacked where the CRI tests look.
    assert!(
        last.contains("containerd 2.1.9 in /opt/monocore/containerd-2.1.9"),
        "{last}"
    );
    assert!(cache.path().join("kernel/compat/stamp").is_file());
    // passt for `net`, private, where monocore looks by default.
    assert!(last.contains("passt in /opt/monocore/passt"), "{last}");
    let check = run({
        let mut command = Command::new(script("install-passt.sh"));
        command.arg("--check").env_remove("MONOCORE_PASST_DIR");
        command
    });
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
}

/// `install-passt.sh --check` says whether a verified install is there: an
/// empty directory, or one whose passt does not run, is not one.
#[test]
fn install_passt_check_fails_where_no_verified_passt_is() {
    let dir = tempfile::tempdir().unwrap();
    let check = |dir: &Path| {
        let mut command = Command::new(script("install-passt.sh"));
        command.arg("--check").env("MONOCORE_PASST_DIR", dir);
        run(command).status.code()
    };
    assert_eq!(check(dir.path()), Some(1));
    for name in ["passt", "ld-linux-x86-64.so.2"] {
        let path = dir.path().join(name);
        // Runs, but says it is bookworm's passt.
        std::fs::write(&path, "#!/bin/sh\necho passt 0.0~git20230309\n").unwrap();
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&path, mode).unwrap();
    }
    assert_eq!(check(dir.path()), Some(1));
}

/// `setup.sh` with containerd 2.1's step to do (its directory,
/// `MONOCORE_CONTAINERD2_DIR`, under `root`, not yet made) and its download
/// stubbed with `stub`; its scratch directory goes under `tmp` (`TMPDIR`).
fn setup_installing_containerd2(root: &Path, tmp: &Path, stub: &str) -> Command {
    let mut command = Command::new(script("setup.sh"));
    command
        .env("MONOCORE_CONTAINERD2_DIR", root.join("containerd-2.1.9"))
        .env("MONOCORE_CONTAINERD2_STUB", stub)
        .env("TMPDIR", tmp);
    command
}

/// What is in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn setup_whose_containerd2_download_fails_exits_1_and_leaves_nothing() {
    let (root, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = run(setup_installing_containerd2(
        root.path(),
        tmp.path(),
        "fail",
    ));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("stub download: failing"), "{stderr}");
    assert!(!stdout.contains("setup: ok"), "{stdout}");
    assert_eq!(entries(root.path()), Vec::<String>::new());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn setup_ended_by_sigterm_during_the_containerd2_download_exits_143_and_leaves_nothing() {
    let (root, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let child = setup_installing_containerd2(root.path(), tmp.path(), "hang")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the download is under way (its scratch directory exists).
    let deadline = Instant::now() + Duration::from_secs(60);
    while entries(tmp.path()).is_empty() {
        assert!(Instant::now() < deadline, "the stub download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_eq!(entries(root.path()), Vec::<String>::new());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}
