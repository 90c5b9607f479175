//! A command running in a VM, attached to this process's terminal or stdio
//! (`run -i/-t`, `exec`).

use std::{
    io::Write,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    vm::{GuestCommand, GuestProcess, VmExitStatus},
};

use crate::terminal;

/// Reads this process's stdin, waiting while it would block: a terminal
/// shared with another process can be in non-blocking mode.
fn read_stdin(buf: &mut [u8]) -> std::io::Result<usize> {
    use rustix::event::{PollFd, PollFlags};
    let stdin = rustix::stdio::stdin();
    loop {
        match rustix::io::read(stdin, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
                rustix::event::poll(&mut fds, None)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attach {
    /// Forward this process's stdin to the command (`-i`).
    pub(crate) interactive: bool,
    /// Give the command a terminal (`-t`): a pseudo-terminal in the guest of
    /// this terminal's size, this terminal in raw mode meanwhile.
    pub(crate) tty: bool,
    /// Kill the command after this long.
    pub(crate) timeout: Option<Duration>,
}

/// How an attached command ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// On its own.
    Exited(VmExitStatus),
    /// This process got a stop signal, and the command was killed.
    Stopped(i32),
    /// The timeout expired, and the command was killed.
    TimedOut,
}

impl Attach {
    /// `command` with a terminal if asked for.
    pub(crate) fn command(&self, command: GuestCommand) -> GuestCommand {
        if !self.tty {
            return command;
        }
        let (rows, cols) = terminal::size().unwrap_or((24, 80));
        command.tty(rows, cols)
    }

    /// Runs `process` until it ends (its output goes to this process's
    /// stdout and stderr).
    pub(crate) fn run(&self, mut process: GuestProcess) -> Result<Ended, MonocoreError> {
        let _raw = if self.tty && terminal::stdin_is_terminal() {
            Some(terminal::RawMode::enter()?)
        } else {
            None
        };
        let stdin = process.take_stdin();
        if self.interactive
            && let Some(mut guest) = stdin
        {
            // Blocks in read(2); the thread ends with this process.
            std::thread::Builder::new()
                .name("stdin".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 16 << 10];
                    while let Ok(n) = read_stdin(&mut buf) {
                        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                            break;
                        };
                        if guest.write_all(chunk).is_err() {
                            return;
                        }
                    }
                    // End of input: dropping `guest` tells the command.
                })?;
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(status) = process.wait_timeout(Duration::from_millis(50))? {
                return Ok(Ended::Exited(status));
            }
            if let Some(signal) = terminal::stop_signal() {
                process.kill()?;
                return Ok(Ended::Stopped(signal));
            }
            if terminal::take_resize()
                && let Some((rows, cols)) = terminal::size()
            {
                process.resize(rows, cols)?;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                process.kill()?;
                return Ok(Ended::TimedOut);
            }
        }
    }
}
