//! The VM helper process: the child that [`MicroVm::spawn`] runs the VM in
//! (this program itself, see [`super::self_helper`], or a separate binary
//! whose `main` calls [`helper_main`]). It reads its request, validates the
//! config again, applies it to libkrun, says `ready` and enters the VM; the
//! protocol is [`super::protocol`]'s.

use std::{
    io::{BufReader, Write},
    os::fd::{AsFd, OwnedFd},
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use super::protocol::{self, HelperRequest};
use crate::{config::MicroVm, error::MonocoreResult};

/// The entry point of a separate VM helper binary.
///
/// You do not need this: every program that links monocore is its own VM
/// helper (see [`MicroVm::spawn`]). It is for those
/// who want the VMM in a binary of its own (to ship it apart, or under
/// another name): that binary's `main` is this one call,
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     monocore::vm::helper_main()
/// }
/// ```
///
/// and [`SpawnOptions::helper_path`](super::SpawnOptions::helper_path) names
/// it. It reads a config from stdin as the helper protocol says (see the
/// `runtime::protocol` module),
/// validates it again, applies it, reports `ready` and enters the VM.
/// Returns only on failure, after reporting it to the parent.
pub fn helper_main() -> ExitCode {
    ExitCode::from(run_helper())
}

/// The helper's work (see [`helper_main`]); returns the exit code of a
/// helper that failed before entering the VM.
pub(crate) fn run_helper() -> u8 {
    ignore_terminal_signals();
    // The private channel: the original stderr, before fd 2 becomes the
    // guest console.
    let private = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3) {
        Ok(fd) => fd,
        Err(_) => return protocol::HELPER_FAILED_EXIT,
    };
    let mut status = std::fs::File::from(private);
    match run(&mut status) {
        Ok(never) => match never {},
        Err(error) => {
            let _ = writeln!(status, "{}", protocol::failure_line(&error));
            protocol::HELPER_FAILED_EXIT
        }
    }
}

/// Ignores the signals a terminal sends to its whole foreground process
/// group (SIGINT and SIGQUIT from the keyboard, SIGHUP on hang-up). The
/// process that spawned the VM gets them too and decides: it kills the VM
/// (and reports the signal), or, if it dies instead, this helper sees its
/// stdin reach EOF and ends the VM.
fn ignore_terminal_signals() {
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no
        // code; it is done before the VM's threads start.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

fn run(status: &mut std::fs::File) -> MonocoreResult<std::convert::Infallible> {
    let request = read_request()?;
    if let Some(ttl) = request.time_to_live {
        end_at(ttl, rustix::io::fcntl_dupfd_cloexec(status.as_fd(), 3)?)?;
    }
    redirect_stdio()?;
    let vm = MicroVm::from_config(request.config)?;
    let mut prepared = vm.prepare_in(&request.run_dir, &request.kernel, request.net)?;
    prepared.start_net()?;

    let log_fd = rustix::io::fcntl_dupfd_cloexec(status.as_fd(), 3)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    writeln!(status, "{}", protocol::ready_line(nanos))?;
    prepared.enter_with_log(log_fd)
}

/// Ends this process (and the VM in it) when `ttl` has passed, after an
/// `expired` line on `status` (the private channel), from a thread of its
/// own: whatever the VM, its guest or the parent do meanwhile.
fn end_at(ttl: std::time::Duration, status: OwnedFd) -> MonocoreResult<()> {
    std::thread::Builder::new()
        .name("monocore-ttl".into())
        .spawn(move || {
            std::thread::sleep(ttl);
            let mut status = std::fs::File::from(status);
            let _ = writeln!(status, "{}", protocol::expired_line(ttl));
            // SAFETY: `_exit` is always safe to call; it ends the process
            // (and with it the VM) without running destructors that other
            // threads may be using.
            unsafe { libc::_exit(protocol::EXPIRED_EXIT) }
        })?;
    Ok(())
}

/// Reads `<len>\n<json>` from stdin, then keeps stdin as the lifeline.
fn read_request() -> MonocoreResult<HelperRequest> {
    let stdin = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?;
    let mut reader = BufReader::new(std::fs::File::from(stdin));
    let request = protocol::decode_request(&mut reader)?;

    // The lifeline: stdin stays open while the parent lives. Nothing is
    // buffered beyond the config (the parent writes nothing more).
    let lifeline: OwnedFd = reader.into_inner().into();
    std::thread::Builder::new()
        .name("monocore-lifeline".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            loop {
                match rustix::io::read(&lifeline, &mut byte) {
                    Err(rustix::io::Errno::INTR) => continue,
                    // Data is not part of the protocol; EOF or an error means
                    // the parent is gone.
                    Ok(1) => continue,
                    _ => {
                        // SAFETY: `_exit` is always safe to call; it ends the
                        // process (and with it the VM) without running
                        // destructors that other threads may be using.
                        unsafe { libc::_exit(protocol::LIFELINE_EXIT) }
                    }
                }
            }
        })?;
    Ok(request)
}

/// fd 0 becomes an empty pipe (the guest reads EOF); fd 2 becomes fd 1, so
/// the guest's stdout and stderr form the console and cannot reach the
/// private channel.
fn redirect_stdio() -> MonocoreResult<()> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    drop(write);
    rustix::stdio::dup2_stdin(&read)?;
    rustix::stdio::dup2_stderr(rustix::stdio::stdout())?;
    Ok(())
}
