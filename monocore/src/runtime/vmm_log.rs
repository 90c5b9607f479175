//! The VMM's log, set up without ever aborting the process.
//!
//! libkrun logs through the `log` facade, which has one logger per process.
//! Its own `krun_init_log` installs `env_logger` with `init()`, which panics
//! when the program already set a logger; that panic cannot unwind out of
//! the `extern "C"` function, so the process aborts. monocore therefore
//! never calls `krun_init_log`: it builds the same `env_logger` (same filter
//! from the level, `RUST_LOG` when asked, micro-second timestamps, no
//! colours, same target) itself and installs it with `try_init()`. The
//! `log` crate is one crate per build (libkrun and the program share it), so
//! when the program already has a logger, libkrun's records simply go to it.

use std::{fs::File, os::fd::OwnedFd};

use env_logger::{Builder, Env, Target};

use crate::config::LogLevel;

/// Where the VMM's log goes.
#[derive(Debug)]
pub(crate) enum LogTarget {
    /// This process's stderr.
    Stderr,
    /// This descriptor (the helper's private status channel).
    Fd(OwnedFd),
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Installed {
    /// The VMM's logger is now this process's `log` logger.
    Ours,
    /// A `log` logger was set before (by the program, or by an earlier
    /// call); it stays, and receives the VMM's records.
    Existing,
}

/// Installs the VMM's logger at `level`; with `use_env`, `RUST_LOG` (and
/// `RUST_LOG_STYLE`) may refine it, as with `krun_init_log`. Never panics:
/// a logger that is already set is kept ([`Installed::Existing`]).
pub(crate) fn install(target: LogTarget, level: LogLevel, use_env: bool) -> Installed {
    const STYLE: &str = "never";
    let filter = level.name();
    let mut builder = if use_env {
        Builder::from_env(
            Env::new()
                .default_filter_or(filter)
                .default_write_style_or(STYLE),
        )
    } else {
        let mut builder = Builder::new();
        builder.parse_filters(filter).parse_write_style(STYLE);
        builder
    };
    let target = match target {
        LogTarget::Stderr => Target::Stderr,
        LogTarget::Fd(fd) => Target::Pipe(Box::new(File::from(fd))),
    };
    match builder.format_timestamp_micros().target(target).try_init() {
        Ok(()) => Installed::Ours,
        Err(_) => Installed::Existing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting;

    static RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl log::Log for Counting {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, _: &log::Record<'_>) {
            RECORDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn flush(&self) {}
    }

    #[test]
    fn a_logger_the_program_set_is_kept_and_gets_the_vmm_records() {
        // The only test in this binary that touches the process's logger.
        log::set_logger(&Counting).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        // With and without RUST_LOG: no panic, no abort, the logger stays.
        assert_eq!(
            install(LogTarget::Stderr, LogLevel::Trace, true),
            Installed::Existing
        );
        assert_eq!(
            install(LogTarget::Stderr, LogLevel::Off, false),
            Installed::Existing
        );
        log::error!(target: "krun_vmm", "a VMM record");
        assert_eq!(RECORDS.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
