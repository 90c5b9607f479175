//! This process's terminal, for commands run with `-t`: raw mode (restored
//! however the command ends), its size, and the signals that matter while a
//! guest command owns it.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rustix::termios::{self, OptionalActions, Termios};

/// The signal that asked this process to stop (SIGINT, SIGTERM, SIGHUP or
/// SIGQUIT), or 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set by SIGWINCH: the terminal was resized.
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(signal: libc::c_int) {
    // Only an atomic swap and, the second time, `_exit`: both
    // async-signal-safe.
    let earlier = STOP_SIGNAL.swap(signal, Ordering::SeqCst);
    if earlier != 0 && FORCE_QUIT.load(Ordering::SeqCst) {
        // A second stop signal during a step that cannot be interrupted
        // (an image pull): quit now. What this run made is swept by the
        // next one (its lock is released with this process).
        // SAFETY: `_exit` is async-signal-safe and never returns.
        unsafe { libc::_exit(128 + (signal & 0x7f)) }
    }
}

/// Set while a step runs that does not look at [`stop_signal`] (an image
/// pull): a second stop signal then ends the process at once.
static FORCE_QUIT: AtomicBool = AtomicBool::new(false);

/// Lets a second stop signal end the process at once while `on` (see
/// [`FORCE_QUIT`]).
pub(crate) fn second_signal_quits(on: bool) {
    FORCE_QUIT.store(on, Ordering::SeqCst);
}

extern "C" fn on_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
}

fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: a zeroed `sigaction` is a valid starting value; the handler is
    // an `extern "C" fn(c_int)` that only stores to an atomic, which is
    // async-signal-safe; `sigaction` reads `action` during the call only.
    let status = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut())
    };
    if status != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Routes SIGINT, SIGTERM, SIGHUP and SIGQUIT to [`stop_signal`], and
/// SIGWINCH to [`take_resize`], so a VM is killed and reaped, and what the
/// run made removed, before this process exits. Called before the first
/// side effect of a command.
pub(crate) fn install_handlers() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        install(signal, on_stop)?;
    }
    install(libc::SIGWINCH, on_resize)
}

/// The signal that asked this process to stop, if one did.
pub(crate) fn stop_signal() -> Option<i32> {
    Some(STOP_SIGNAL.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// Whether the terminal was resized since the last call.
pub(crate) fn take_resize() -> bool {
    RESIZED.swap(false, Ordering::SeqCst)
}

/// The size of the terminal on stdin (or stdout), as rows and columns.
pub(crate) fn size() -> Option<(u16, u16)> {
    [rustix::stdio::stdin(), rustix::stdio::stdout()]
        .into_iter()
        .find_map(|fd| termios::tcgetwinsize(fd).ok())
        .filter(|w| w.ws_row > 0 && w.ws_col > 0)
        .map(|w| (w.ws_row, w.ws_col))
}

/// Whether stdin is a terminal.
pub(crate) fn stdin_is_terminal() -> bool {
    termios::isatty(rustix::stdio::stdin())
}

/// Raw mode on stdin's terminal while alive: keys (`^C` included) go to the
/// guest as bytes; the previous mode comes back on drop.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Switches stdin's terminal to raw mode.
    pub(crate) fn enter() -> std::io::Result<Self> {
        let stdin = rustix::stdio::stdin();
        let saved = termios::tcgetattr(stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin, OptionalActions::Now, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// The file status flags of stdin, stdout and stderr, restored on drop.
///
/// libkrun makes its console non-blocking, and a VMM that inherits this
/// process's terminal changes the flags of the open file description the
/// terminal's other users (the shell that started monocore) share.
pub(crate) struct StdioFlags {
    saved: Vec<(i32, rustix::fs::OFlags)>,
}

impl StdioFlags {
    /// Saves the flags of fds 0, 1 and 2 (those that are open).
    pub(crate) fn save() -> Self {
        let fds = [
            (0, rustix::stdio::stdin()),
            (1, rustix::stdio::stdout()),
            (2, rustix::stdio::stderr()),
        ];
        let saved = fds
            .into_iter()
            .filter_map(|(n, fd)| rustix::fs::fcntl_getfl(fd).ok().map(|flags| (n, flags)))
            .collect();
        Self { saved }
    }
}

impl Drop for StdioFlags {
    fn drop(&mut self) {
        for &(n, flags) in &self.saved {
            let fd = match n {
                0 => rustix::stdio::stdin(),
                1 => rustix::stdio::stdout(),
                _ => rustix::stdio::stderr(),
            };
            let _ = rustix::fs::fcntl_setfl(fd, flags);
        }
    }
}
