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
//! 4. Listens on the control channel (vsock) when the spec asks for it,
//!    starts the main command with exactly the spec's arguments,
//!    environment, working directory and resource limits (its stdio is the
//!    console), and reports `ready`.
//! 5. Serves the control channel (one thread per session: a command run in
//!    the VM or in a container inside it (see [`container`]), with its
//!    output streamed back, or a shutdown) while the main command runs.
//!    When the main command ends, the agent ends with its exit code (128 +
//!    N for signal N), unless the spec says to keep the VM; then it ends on
//!    a shutdown request. Commands still running are killed. Each command
//!    runs in a process group of its own, and a kill (the host's `Kill`, a
//!    session whose host went away) ends what it started too (see
//!    [`tree`]).
//!
//! A failed step is reported to the host (`/.monocore/status`) and on the
//! console, and the agent exits with 125; a command that cannot be executed
//! exits with 127 (not found) or 126 (other errors), as shells do.

mod command;
mod console;
mod container;
mod files;
mod net;
mod pty;
mod session;
mod setup;
mod spawn;
mod sys;
mod tree;

use std::{
    fs::File,
    io::Write,
    os::unix::fs::FileExt,
    process::ExitCode,
    sync::{Arc, Mutex, mpsc},
};

use monocore_agent::{
    control::ExitKind,
    paths,
    report::{self, Report},
    spec::FLAG_KEEP,
};

/// Replaces the report file's content with `report`.
fn write_report(file: Option<&File>, report: &Report) {
    if let Some(file) = file {
        let _ = file.set_len(0);
        let _ = file.write_all_at(report.encode().as_bytes(), 0);
    }
}

/// The agent's `main`: sets the VM up, runs the main command and serves
/// the control channel; returns the exit code the VM ends with.
pub(crate) fn main() -> ExitCode {
    // The report file must be opened before the private root is left behind.
    let report = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(paths::REPORT)
        .ok();
    let failure = match setup::run() {
        Ok(setup) => {
            write_report(report.as_ref(), &Report::Ready);
            drop(report);
            return run_vm(setup);
        }
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

/// The exit code of a command that ended this way (128 + N for signal N).
fn exit_code(kind: ExitKind) -> u8 {
    let code = match kind {
        ExitKind::Code(code) => code,
        ExitKind::Signal(signal) => 128 + signal,
    };
    u8::try_from(code & 0xff).unwrap_or(255)
}

/// Runs until the main command ends (or, with `FLAG_KEEP`, until a
/// shutdown request), serving the control channel meanwhile.
fn run_vm(setup: setup::Setup) -> ExitCode {
    let (events, inbox) = mpsc::channel();
    let agent = Arc::new(session::Agent {
        rlimits: setup.spec.rlimits.clone(),
        running: Mutex::new(Vec::new()),
        containers: container::Containers::default(),
        events: events.clone(),
    });
    if let Some(listener) = setup.control {
        let agent = Arc::clone(&agent);
        let _ = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || session::serve(listener, agent));
    }
    let main_pid = setup.main.as_ref().map(std::process::Child::id);
    if let Some(mut main) = setup.main {
        let _ = std::thread::Builder::new()
            .name("main".into())
            .spawn(move || {
                let kind = main.wait().map_or(ExitKind::Code(255), session::exit_kind);
                let _ = events.send(session::Event::MainExited(kind));
            });
    }
    let keep = setup.spec.flags & FLAG_KEEP != 0 || main_pid.is_none();
    let mut main_status = None;
    while let Ok(event) = inbox.recv() {
        match event {
            session::Event::MainExited(kind) => {
                main_status = Some(kind);
                if !keep {
                    break;
                }
            }
            session::Event::Shutdown => break,
        }
    }
    agent.kill_all();
    if let (Some(pid), None) = (main_pid, main_status) {
        let _ = sys::send_signal(pid, 9);
    }
    let _ = std::io::stdout().flush();
    ExitCode::from(main_status.map_or(0, exit_code))
}
