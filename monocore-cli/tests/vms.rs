//! `monocore run -it`, `run --keep`, `exec`, `ps` and `stop`, with the real
//! binary and real boots. They run where a VM can boot (see the root
//! package's `tests/boot.rs`); elsewhere each prints `SKIPPED`.

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    ffi::CStr,
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

mod common;

use common::monocore;
use monocore_suite::may_boot;

/// A pseudo-terminal pair: (master, slave path).
fn pty() -> (File, String) {
    // SAFETY: plain libc calls on a fresh fd; the name is copied at once.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(master >= 0);
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = CStr::from_ptr(libc::ptsname(master))
            .to_str()
            .unwrap()
            .to_owned();
        (File::from(OwnedFd::from_raw_fd(master)), name)
    }
}

/// Reads the terminal's output in a thread; the receiver gets each chunk.
/// Like a terminal, it answers a cursor-position query (`ESC [6n`, which
/// busybox's line editor sends before each prompt) with a position.
fn reader(mut master: File) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let mut answer = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                return;
            }
            if buf[..n].windows(4).any(|w| w == b"\x1b[6n") {
                let _ = answer.write_all(b"\x1b[24;5R");
            }
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Collects chunks from `rx` until `needle` appears (at most 5 minutes).
fn until(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut Vec<u8>, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !String::from_utf8_lossy(seen).contains(needle) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend_from_slice(&chunk),
            Err(_) => panic!(
                "never saw {needle:?}; got:\n{}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

#[test]
fn run_it_is_an_interactive_shell_on_a_terminal() {
    if !may_boot("run_it_is_an_interactive_shell_on_a_terminal") {
        return;
    }
    let (mut master, slave_name) = pty();
    let slave = File::options()
        .read(true)
        .write(true)
        .open(&slave_name)
        .unwrap();
    let mut command = monocore();
    command
        .args(["run", "--ram", "128", "-it", "--", "/bin/sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and TIOCSCTTY in the child before exec: the pty becomes
    // its controlling terminal, as in a real terminal session.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(slave);
    let rx = reader(master.try_clone().unwrap());
    let mut screen = Vec::new();
    // Typed before the shell runs: the terminal keeps it until then.
    master.write_all(b"echo hi-$((6*7)); tty\r").unwrap();
    until(&rx, &mut screen, "hi-42");
    until(&rx, &mut screen, "/dev/pts/");
    // ^C reaches the guest's shell (raw mode here), which survives it.
    master.write_all(b"sleep 100\r").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    master.write_all(b"\x03echo after-ctrl-c\r").unwrap();
    until(&rx, &mut screen, "after-ctrl-c");
    master.write_all(b"exit 3\r").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&screen)
    );
    // The terminal is back in its own mode.
    // SAFETY: a zeroed termios is valid storage for tcgetattr to fill.
    let mut mode: libc::termios = unsafe { std::mem::zeroed() };
    let slave = File::options()
        .read(true)
        .write(true)
        .open(&slave_name)
        .unwrap();
    // SAFETY: `mode` is valid, writable storage; the fd is open.
    assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut mode) }, 0);
    assert_ne!(mode.c_lflag & libc::ICANON, 0, "raw mode was not restored");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

#[test]
fn a_kept_vm_runs_more_commands_and_stops_on_request() {
    if !may_boot("a_kept_vm_runs_more_commands_and_stops_on_request") {
        return;
    }
    let mut vm = monocore()
        .args([
            "run",
            "--ram",
            "128",
            "--keep",
            "--",
            "/bin/sh",
            "-c",
            "echo main-ran; exit 6",
        ])
        .stdout(Stdio::piped())
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

    let ps = run(monocore().arg("ps"));
    let listing = String::from_utf8_lossy(&ps.stdout);
    assert!(listing.contains(&id), "{listing}");
    assert!(
        listing.contains("/bin/sh -c echo main-ran; exit 6"),
        "{listing}"
    );

    let out = run(monocore().args(["exec", &id[..8], "--", "/bin/echo", "from exec"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"from exec\n");
    // No `--`: everything after the command (`-c` too) is the command's.
    let out = run(monocore().args([
        "exec",
        "-e",
        "X=y z",
        &id,
        "/bin/sh",
        "-c",
        "echo $X >&2; exit 4",
    ]));
    assert_eq!(
        (out.status.code(), out.stderr.as_slice()),
        (Some(4), &b"y z\n"[..])
    );
    let out = run(monocore().args(["exec", "nope", "--", "/bin/true"]));
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no running VM has that ID"));

    let stop = run(monocore().args(["stop", &id]));
    assert_eq!(
        stop.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let status = vm.wait().unwrap();
    let mut console = String::new();
    vm.stdout
        .take()
        .unwrap()
        .read_to_string(&mut console)
        .unwrap();
    assert_eq!(console, "main-ran\n");
    // The VM ended with its main command's code.
    assert_eq!(status.code(), Some(6));
    let ps = run(monocore().arg("ps"));
    assert!(!String::from_utf8_lossy(&ps.stdout).contains(&id));
}
