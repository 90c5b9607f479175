//! `monocore cp` both ways with a VM kept by `run --keep`, with the real
//! binary and one real boot. Runs where a VM can boot (see the root
//! package's `tests/boot.rs`); elsewhere it prints `SKIPPED`.

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    fs,
    io::{BufRead, BufReader},
    os::unix::fs::symlink,
    path::Path,
    process::{Command, Output, Stdio},
};

mod common;

use common::monocore;
use monocore_suite::may_boot;

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cp(src: impl AsRef<std::ffi::OsStr>, dst: impl AsRef<std::ffi::OsStr>) -> Output {
    run(monocore().arg("cp").arg(src).arg(dst))
}

#[test]
fn cp_copies_files_and_trees_in_and_out_of_a_kept_vm() {
    if !may_boot("cp_copies_files_and_trees_in_and_out_of_a_kept_vm") {
        return;
    }
    let mut vm = monocore()
        .args(["run", "--ram", "128", "--keep", "--", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(vm.stderr.take().unwrap()).lines();
    let announce = lines.next().unwrap().unwrap();
    let id = announce
        .strip_prefix("monocore: VM ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{announce}"))
        .to_owned();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("notes.txt"), "notes\n").unwrap();
    fs::write(src.join("sub/deep.txt"), "deep\n").unwrap();
    symlink("/etc", src.join("etc-link")).unwrap();

    // A file into an existing directory: under its own name.
    let out = cp(src.join("notes.txt"), format!("{id}:/tmp"));
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("copied 6 bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cat = run(monocore().args(["exec", &id, "cat", "/tmp/notes.txt"]));
    ok(&cat);
    assert_eq!(cat.stdout, b"notes\n");

    // A tree to a new path, and back to a new host path.
    ok(&cp(&src, format!("{}:/tmp/tree", &id[..8])));
    let back = host.path().join("back");
    ok(&cp(format!("{id}:/tmp/tree"), &back));
    assert_eq!(fs::read(back.join("sub/deep.txt")).unwrap(), b"deep\n");
    assert_eq!(fs::read(back.join("notes.txt")).unwrap(), b"notes\n");
    assert_eq!(
        fs::read_link(back.join("etc-link")).unwrap(),
        Path::new("/etc")
    );
    // Into an existing host directory: under its own name; `/.` copies
    // the contents.
    ok(&cp(format!("{id}:/tmp/tree"), &back));
    assert_eq!(fs::read(back.join("tree/sub/deep.txt")).unwrap(), b"deep\n");
    let contents = host.path().join("contents");
    fs::create_dir(&contents).unwrap();
    ok(&cp(format!("{id}:/tmp/tree/."), &contents));
    assert!(contents.join("sub/deep.txt").is_file());

    // Errors: two host paths, a relative VM path (the command line), a
    // missing VM path (the VM's answer).
    assert_eq!(cp("a", "b").status.code(), Some(2));
    let out = cp(format!("{id}:etc"), "x");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be absolute"));
    let out = cp(format!("{id}:/no/such"), host.path().join("none"));
    assert_eq!(out.status.code(), Some(125));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(!host.path().join("none").exists());

    ok(&run(monocore().args(["stop", &id])));
    assert_eq!(vm.wait().unwrap().code(), Some(0));
}
