//! The agent: runs inside each microVM as the command libkrun's init
//! starts, in the VM's private root filesystem.
//!
//! 1. Reads the run spec (`/.monocore/spec`) and opens the report file.
//! 2. Enters a mount namespace of its own, mounts the guest's real root
//!    filesystem (a virtio-fs share) and switches into it with
//!    `pivot_root`; the private root is detached, so the command never
//!    sees it.
//! 3. Mounts `/dev`, `/proc`, `/sys`, `/dev/pts`, `/dev/shm`, then every
//!    mapped directory at its guest path, creating missing mount points
//!    inside the guest (where a symlink can only lead within the guest).
//! 4. Sets the resource limits and the working directory, reports `ready`,
//!    and executes the command with exactly the spec's arguments and
//!    environment. Its exit code or signal then is the VM's.
//!
//! A failed step is reported to the host (`/.monocore/status`) and on the
//! console, and the agent exits with 125; a command that cannot be executed
//! exits with 127 (not found) or 126 (other errors), as shells do.

mod console;
mod setup;
mod sys;

use std::{fs::File, io::Write, os::unix::fs::FileExt, process::ExitCode};

use crate::{
    paths,
    report::{self, Report},
};

/// Replaces the report file's content with `report`.
fn write_report(file: Option<&File>, report: &Report) {
    if let Some(file) = file {
        let _ = file.set_len(0);
        let _ = file.write_all_at(report.encode().as_bytes(), 0);
    }
}

/// The agent's `main`: runs every step and executes the command; returns
/// only on failure, with the exit code to use.
pub fn main() -> ExitCode {
    // The report file must be opened before the private root is left behind.
    let report = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(paths::REPORT)
        .ok();
    let failure = match setup::run(|| write_report(report.as_ref(), &Report::Ready)) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    let code = if failure.step == report::Step::Exec {
        if failure.errno == 2 { 127 } else { 126 }
    } else {
        125
    };
    let _ = writeln!(std::io::stderr(), "monocore-agent: {failure}");
    write_report(
        report.as_ref(),
        &Report::Failed {
            step: failure.step,
            errno: failure.errno,
            detail: failure.detail,
        },
    );
    ExitCode::from(code)
}
