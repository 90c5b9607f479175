//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` panics when stdout is a closed pipe (`monocore … | head -c1`)
//! or a full device (`> /dev/full`). Here a failed write to stdout is
//! remembered instead, and [`finish`] turns it into the exit code: a closed
//! pipe ends quietly with 141 (128 + SIGPIPE, what a shell reports for a tool
//! that a closed pipe ended), any other error is reported once on stderr
//! and ends with 125. A failed write to stderr is ignored: there is nowhere
//! left to say it.

use std::{
    fmt,
    io::{self, Write},
    process::ExitCode,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
};

use crate::EXIT_MONOCORE_FAILED;

/// The exit code after stdout was found to be a closed pipe.
pub(crate) const EXIT_BROKEN_PIPE: u8 = 141;

/// Set once a write to stdout failed: later writes are not attempted.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// The first stdout error, to report in [`finish`].
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);
/// `--quiet` (0), default (1) or `--verbose` (2).
static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Sets how much monocore says on stderr: `--quiet` keeps only errors,
/// `--verbose` adds each step.
pub(crate) fn set_verbosity(quiet: bool, verbose: bool) {
    let level = match (quiet, verbose) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 2,
    };
    VERBOSITY.store(level, Ordering::Relaxed);
}

/// Whether notes and progress are wanted (not `--quiet`).
pub(crate) fn chatty() -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= 1
}

/// Whether each step is wanted (`--verbose`).
pub(crate) fn verbose() -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= 2
}

/// Writes all of `bytes` to `out`, waiting (instead of failing with
/// `EAGAIN`) when the descriptor is non-blocking and full.
fn write_all_waiting(
    out: &mut impl Write,
    fd: rustix::fd::BorrowedFd<'_>,
    bytes: &[u8],
) -> io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let _ = rustix::event::poll(&mut fds, None);
            }
            Err(e) => return Err(e),
        }
    }
    out.flush()
}

/// Writes `args` and a newline to stdout; see the module docs.
pub(crate) fn stdout_line(args: fmt::Arguments<'_>) {
    if STDOUT_FAILED.load(Ordering::Relaxed) {
        return;
    }
    let text = format!("{args}\n");
    let mut out = io::stdout().lock();
    if let Err(e) = write_all_waiting(&mut out, rustix::stdio::stdout(), text.as_bytes()) {
        STDOUT_FAILED.store(true, Ordering::Relaxed);
        if let Ok(mut slot) = STDOUT_ERROR.lock() {
            slot.get_or_insert(e);
        }
    }
}

/// Writes `args` to stderr, ignoring errors.
pub(crate) fn stderr_text(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut err = io::stderr().lock();
    let _ = write_all_waiting(&mut err, rustix::stdio::stderr(), text.as_bytes());
}

/// `code`, unless writing to stdout failed (see the module docs).
pub(crate) fn finish(code: ExitCode) -> ExitCode {
    let _ = io::stdout().lock().flush();
    if !STDOUT_FAILED.load(Ordering::Relaxed) {
        return code;
    }
    let error = STDOUT_ERROR.lock().ok().and_then(|mut slot| slot.take());
    match error {
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_BROKEN_PIPE),
        Some(e) => {
            stderr_text(format_args!(
                "monocore: error: cannot write to stdout: {e}\n"
            ));
            ExitCode::from(EXIT_MONOCORE_FAILED)
        }
        None => ExitCode::from(EXIT_MONOCORE_FAILED),
    }
}

/// `println!` that never panics: see [`stdout_line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr_text(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::output::stderr_text(format_args!($($arg)*))
    };
}

/// A note on stderr, unless `--quiet`.
macro_rules! note {
    ($($arg:tt)*) => {
        if $crate::output::chatty() {
            $crate::output::stderr_text(format_args!("{}\n", format_args!($($arg)*)))
        }
    };
}

/// A step on stderr, with `--verbose` only.
macro_rules! step {
    ($($arg:tt)*) => {
        if $crate::output::verbose() {
            $crate::output::stderr_text(format_args!("monocore: {}\n", format_args!($($arg)*)))
        }
    };
}

pub(crate) use {err, errln, note, outln, step};
