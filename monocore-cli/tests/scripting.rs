//! The `monocore` command for scripts, with the real binary: `run
//! --config`, one vocabulary (the `vm!` keys in flags and JSON), `CMD`
//! without `--`, suggestions for typos, `-e NAME` and `--env-file`, sizes,
//! `doctor --json`, completions, and output to a closed or full stdout.

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    path::Path,
    process::{Command, Stdio},
};

use monocore_suite::output_of as run;
use serde_json::Value;

mod common;

use common::monocore;

/// A directory with `rootfs/` and `data/` in it.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    dir
}

/// `monocore run --dry-run ARGS` in `cwd`: the JSON it printed. With a
/// private, empty cache directory: no compat kernel, so on a `kvm_pvm` host
/// the config is checked against libkrunfw's rules (which allow
/// networking), as on a host with hardware KVM.
fn dry_run_in(cwd: &Path, args: &[&str]) -> Value {
    let cache = tempfile::tempdir().unwrap();
    let (code, out, err) = run(monocore()
        .env("MONOCORE_CACHE_DIR", cache.path())
        .current_dir(cwd)
        .args(["run", "--dry-run"])
        .args(args));
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const FILE: &str = r#"
root = "rootfs"
ram = 256
vcpus = 2
exec = "/bin/echo"
args = ["from", "the file"]
env = ["A=file", "B=file"]
mapped_dirs = ["./data:/data"]
log_level = "Info"
"#;

#[test]
fn run_config_reads_the_file_with_flags_over_it() {
    let dir = project();
    let file = dir.path().join("vm.toml");
    std::fs::write(&file, FILE).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();

    // The file alone; its relative paths resolve against its directory.
    let json = dry_run_in(elsewhere.path(), &["--config", file.to_str().unwrap()]);
    assert_eq!(json["root"], base.join("rootfs").to_str().unwrap());
    assert_eq!(json["ram"], 256);
    assert_eq!(json["vcpus"], 2);
    assert_eq!(json["exec"], "/bin/echo");
    assert_eq!(json["args"], serde_json::json!(["from", "the file"]));
    assert_eq!(
        json["mapped_dirs"],
        serde_json::json!([format!("{}:/data", base.join("data").display())])
    );
    assert_eq!(json["log_level"], "info");

    // Flags override scalars, add to lists (-e wins for the same name), and
    // CMD replaces the file's exec and args.
    let json = dry_run_in(
        elsewhere.path(),
        &[
            "--config",
            file.to_str().unwrap(),
            "--ram",
            "1G",
            "--vcpus",
            "3",
            "-e",
            "B=flag",
            "-e",
            "C=flag",
            "--log-level",
            "WARN",
            "/bin/true",
            "x",
        ],
    );
    assert_eq!(json["ram"], 1024);
    assert_eq!(json["vcpus"], 3);
    assert_eq!(
        json["env"],
        serde_json::json!(["A=file", "B=flag", "C=flag"])
    );
    assert_eq!(json["exec"], "/bin/true");
    assert_eq!(json["args"], serde_json::json!(["x"]));
    assert_eq!(json["log_level"], "warn");
}

#[test]
fn monocore_toml_is_read_only_when_asked() {
    let dir = project();
    std::fs::write(dir.path().join("monocore.toml"), FILE).unwrap();
    // `--config` without a value: ./monocore.toml.
    let json = dry_run_in(dir.path(), &["--config"]);
    assert_eq!(json["ram"], 256);
    assert_eq!(json["exec"], "/bin/echo");
    // Without `--config` it is not read.
    let json = dry_run_in(dir.path(), &["--root", "rootfs"]);
    assert_eq!(json["ram"], monocore::config::DEFAULT_RAM_MIB);
    assert_eq!(json["exec"], "/bin/sh");
    // A bad file: each problem with its line and column, exit 125.
    std::fs::write(
        dir.path().join("monocore.toml"),
        "root = \"rootfs\"\nram = 0\n",
    )
    .unwrap();
    let (code, _, err) =
        run(monocore()
            .current_dir(dir.path())
            .args(["run", "--dry-run", "--config"]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("monocore.toml:2:7: `ram`: ram (MiB) is 0"),
        "{err}"
    );
}

#[test]
fn dry_run_json_uses_exactly_the_vm_keys() {
    let dir = project();
    let json = dry_run_in(dir.path(), &["--root", "rootfs"]);
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected: Vec<&str> = monocore_rules::Field::ALL
        .map(monocore_rules::Field::key)
        .to_vec();
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn flags_take_the_vm_keys_and_the_old_names() {
    let dir = project();
    let data = format!("{}:/data", dir.path().join("data").display());
    let new = dry_run_in(
        dir.path(),
        &[
            "--root",
            "rootfs",
            "--ram",
            "512M",
            "--vcpus",
            "2",
            "--mapped-dirs",
            &data,
            "--tsi",
            "--port-map",
            "8080:80",
            "--rlimits",
            "RLIMIT_NOFILE=1:2",
            "--log-level",
            "Debug",
            "--",
            "/bin/true",
        ],
    );
    let old = dry_run_in(
        dir.path(),
        &[
            "--root",
            "rootfs",
            "--memory",
            "512",
            "--cpus",
            "2",
            "--volume",
            &data,
            "--local-only",
            "false",
            "--port",
            "8080:80",
            "--rlimit",
            "RLIMIT_NOFILE=1:2",
            "--log_level",
            "debug",
            "/bin/true",
        ],
    );
    assert_eq!(new, old);
    assert_eq!(new["ram"], 512);
    assert_eq!(new["local_only"], false);
    assert_eq!(
        dry_run_in(dir.path(), &["--root", "rootfs", "--ram", "2G"])["ram"],
        2048
    );
    let (code, _, err) = run(monocore().current_dir(dir.path()).args([
        "run",
        "--dry-run",
        "--root",
        "rootfs",
        "--ram",
        "1T",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("is not a size"), "{err}");
}

#[test]
fn net_and_allow_come_from_the_file_and_the_flags() {
    let dir = project();
    std::fs::write(
        dir.path().join("vm.toml"),
        "root = \"rootfs\"\nram = 64\nnet = true\nallow = [\"pypi.org:443\"]\n",
    )
    .unwrap();
    // `--allow` adds to the file's list, as the other list flags do.
    let json = dry_run_in(
        dir.path(),
        &[
            "--config",
            "vm.toml",
            "--allow",
            "127.0.0.1:5432",
            "-p",
            "8080:80",
        ],
    );
    assert_eq!(json["net"], true);
    assert_eq!(json["local_only"], true);
    assert_eq!(
        json["allow"],
        serde_json::json!(["pypi.org:443", "127.0.0.1:5432"])
    );
    assert_eq!(json["port_map"], serde_json::json!(["8080:80"]));
    // `--tsi` on top of the file's `net`: refused at `--net`'s key.
    let (code, _, err) = run(monocore().current_dir(dir.path()).args([
        "run",
        "--dry-run",
        "--config",
        "vm.toml",
        "--tsi",
    ]));
    assert_eq!(code, 125, "{err}");
    assert!(
        err.starts_with("monocore: error: --net: `net` and TSI"),
        "{err}"
    );
}

#[test]
fn cmd_needs_no_dashes_and_flags_after_it_are_its_own() {
    let dir = project();
    let json = dry_run_in(
        dir.path(),
        &["--root", "rootfs", "echo", "-n", "--ram", "5"],
    );
    assert_eq!(json["exec"], "echo");
    assert_eq!(json["args"], serde_json::json!(["-n", "--ram", "5"]));
    assert_eq!(json["ram"], monocore::config::DEFAULT_RAM_MIB);
    // With `--`, as before.
    let json = dry_run_in(dir.path(), &["--root", "rootfs", "--", "echo", "hi"]);
    assert_eq!(json["exec"], "echo");
    // A word that names an image and --root exclude each other.
    let (code, _, err) = run(monocore().current_dir(dir.path()).args([
        "run",
        "--dry-run",
        "--root",
        "rootfs",
        "alpine:3.20",
    ]));
    assert_eq!(code, 2, "{err}");
    // Image flags need an image, given as a word or with --image.
    let (code, _, err) = run(monocore().current_dir(dir.path()).args([
        "run",
        "--dry-run",
        "--root",
        "rootfs",
        "--entrypoint",
        "/x",
        "echo",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--entrypoint and --pull need an IMAGE"),
        "{err}"
    );
    for image in [&["Bad/Image"][..], &["--image", "Bad/Image"]] {
        let (code, _, err) = run(monocore()
            .current_dir(dir.path())
            .args(["run", "--dry-run", "--entrypoint", ""])
            .args(image));
        assert_eq!(code, 125, "{err}");
        assert!(
            err.contains("invalid image reference \"Bad/Image\""),
            "{err}"
        );
    }
}

#[test]
fn typos_get_a_suggestion() {
    let (code, _, err) = run(monocore().arg("rnu"));
    assert_eq!(code, 2);
    assert!(err.contains("a similar subcommand exists: 'run'"), "{err}");
    let (code, _, err) = run(monocore().args(["run", "--rma", "5", "echo"]));
    assert_eq!(code, 2);
    assert!(err.contains("a similar argument exists: '--ram'"), "{err}");
    let (code, _, err) = run(monocore().args(["doctor", "--jsno"]));
    assert_eq!(code, 2);
    assert!(err.contains("'--json'"), "{err}");
}

#[test]
fn env_names_pass_the_host_value_and_env_files_are_read() {
    let dir = project();
    let file = dir.path().join("env");
    std::fs::write(
        &file,
        "# a comment\nFROM_FILE=1\nSHARED=file\nPASSED_IN_FILE\n",
    )
    .unwrap();
    let (code, out, err) = run(monocore()
        .current_dir(dir.path())
        .env("PASSED", "host value")
        .env("PASSED_IN_FILE", "also")
        .env_remove("NOT_SET_ANYWHERE")
        .args(["run", "--dry-run", "--root", "rootfs", "--env-file"])
        .arg(&file)
        .args([
            "-e",
            "PASSED",
            "-e",
            "NOT_SET_ANYWHERE",
            "-e",
            "SHARED=flag",
            "/bin/true",
        ]));
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["env"],
        serde_json::json!([
            "FROM_FILE=1",
            "SHARED=flag",
            "PASSED_IN_FILE=also",
            "PASSED=host value"
        ])
    );
    std::fs::write(&file, "OK=1\n=bad\n").unwrap();
    let (code, _, err) = run(monocore()
        .current_dir(dir.path())
        .args(["run", "--dry-run", "--root", "rootfs", "--env-file"])
        .arg(&file));
    assert_eq!(code, 2);
    // The file and line, then the cause, told once.
    assert!(
        err.contains("env:2: the line is not `NAME=value` or `NAME`\n  caused by: invalid environment variable \"=bad\""),
        "{err}"
    );
    assert_eq!(
        err.matches("invalid environment variable").count(),
        1,
        "{err}"
    );
}

#[test]
fn doctor_json_has_the_documented_keys_and_the_verdict() {
    let (code, out, err) = run(monocore().args(["doctor", "--json"]));
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "can_boot",
            "checks",
            "cpus",
            "kernel",
            "memory_available_mib",
            "memory_total_mib",
            "problems",
            "verdict"
        ]
    );
    let report = monocore::host::check();
    assert_eq!(json["can_boot"], report.can_boot());
    assert_eq!(code, if report.can_boot() { 0 } else { 1 });
    assert_eq!(json["cpus"], report.cpus);
    for check in json["checks"].as_array().unwrap() {
        assert!(
            check["check"].is_string() && check["ok"].is_boolean() && check["detail"].is_string()
        );
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "BASH"] {
        let (code, out, err) = run(monocore().args(["completions", shell]));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            out.contains("monocore") && out.contains("mapped-dirs"),
            "{shell}"
        );
    }
    let (code, _, _) = run(monocore().args(["completions", "tcsh"]));
    assert_eq!(code, 2);
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("monocore.bash");
    let (_, out, _) = run(monocore().args(["completions", "bash"]));
    std::fs::write(&script, out).unwrap();
    let (code, _, err) = run(Command::new("bash").arg("-n").arg(&script));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_closed_or_full_stdout_never_panics() {
    let dir = project();
    let dry_run = || {
        let mut cmd = monocore();
        cmd.current_dir(dir.path())
            .args(["run", "--dry-run", "--root", "rootfs"]);
        cmd
    };
    // A pipe whose reader is gone: EPIPE ends quietly, 141.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = dry_run()
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // A full device: said once, 125.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = dry_run()
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "monocore: error: cannot write to stdout: No space left on device (os error 28)\n"
    );
    // As a user types it.
    let (code, out, err) =
        run(Command::new("bash")
            .current_dir(dir.path())
            .arg("-c")
            .arg(format!(
                "{} run --dry-run --root rootfs | head -c1; echo \" ${{PIPESTATUS[0]}}\"",
                env!("CARGO_BIN_EXE_monocore")
            )));
    assert_eq!(code, 0);
    assert!(out == "{ 0\n" || out == "{ 141\n", "{out}");
    assert!(!err.contains("panicked"), "{err}");
    for listing in [
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["ps"],
        vec!["--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = monocore()
            .args(&listing)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{listing:?}: {err}");
    }
}

#[test]
fn verbose_says_each_step_and_quiet_says_nothing() {
    if monocore::rootfs::find_busybox().is_err() {
        eprintln!("SKIPPED: verbose_says_each_step_and_quiet_says_nothing: no busybox-static");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let (code, _, err) = run(monocore().env("MONOCORE_CACHE_DIR", cache.path()).args([
        "run",
        "--verbose",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("monocore: preparing a private copy of the busybox rootfs"),
        "{err}"
    );
    let (code, _, err) = run(monocore().env("MONOCORE_CACHE_DIR", cache.path()).args([
        "--quiet",
        "run",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    let (code, _, _) = run(monocore().args(["-q", "--verbose", "doctor"]));
    assert_eq!(code, 2);
}
