//! The `monocore-vmm` helper process: the child that [`MicroVm::spawn`]
//! runs the VM in.
//!
//! # Protocol (private to monocore; both ends are in this crate)
//!
//! - **stdin**: the parent writes one line with the byte length of the
//!   config, then the config as JSON ([`MicroVmConfig`]'s serde form). It then
//!   keeps stdin open as a *lifeline*: when the parent dies, stdin reaches
//!   EOF and the helper ends at once, so a VM never outlives its owner. The
//!   guest itself gets an empty stdin.
//! - **stderr**: a private channel to the parent, which the guest cannot
//!   write to. It carries status lines (`monocore-vmm ready <unix-nanos>`,
//!   `monocore-vmm error …`) and the VMM's log (env_logger lines
//!   `[<time> <LEVEL> <target>] <message>`).
//! - **stdout**: the guest console (the guest's stdout and stderr).
//! - **exit status**: after `ready`, the VMM exits the process with the
//!   guest's exit code. Whether that code came from the guest or from a VMM
//!   failure is told by libkrun's own log line (`using vmm exit code: N`
//!   means the guest reported N; `using vcpu exit code: N` means it never
//!   did), which the parent requests with `RUST_LOG=…,krun_vmm=debug`.
//!
//! [`MicroVm::spawn`]: super::MicroVm::spawn

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::fd::{AsFd, IntoRawFd, OwnedFd},
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use super::{MicroVm, MicroVmConfig};
use crate::{MonocoreError, MonocoreResult};

/// Prefix of every status line the helper writes.
pub(crate) const STATUS_PREFIX: &str = "monocore-vmm ";
/// The exit code of a helper that failed before entering the VM.
pub(crate) const HELPER_FAILED_EXIT: u8 = 70;
/// The exit code of a helper whose parent went away.
const LIFELINE_EXIT: i32 = 71;
/// The largest config the helper accepts.
const MAX_CONFIG_LEN: usize = 1 << 30;

/// The helper's entry point; `monocore-vmm`'s `main` is just this call.
///
/// Reads a config from stdin as described in the module docs, validates it
/// again, applies it, reports `ready` and enters the VM. Returns only on
/// failure, after reporting it to the parent.
///
/// You only need this to build your own helper binary (e.g. to ship it under
/// another name); point `SpawnOptions::helper_path` or `MONOCORE_VMM_PATH` at
/// it.
pub fn helper_main() -> ExitCode {
    // The private channel: the original stderr, before fd 2 becomes the
    // guest console.
    let private = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3) {
        Ok(fd) => fd,
        Err(_) => return ExitCode::from(HELPER_FAILED_EXIT),
    };
    let mut status = std::fs::File::from(private);
    match run(&mut status) {
        Ok(never) => match never {},
        Err(error) => {
            let _ = writeln!(status, "{STATUS_PREFIX}{}", encode_error(&error));
            ExitCode::from(HELPER_FAILED_EXIT)
        }
    }
}

fn run(status: &mut std::fs::File) -> MonocoreResult<std::convert::Infallible> {
    let config = read_config()?;
    redirect_stdio()?;
    let vm = MicroVm::from_config(config)?;
    let prepared = vm.prepare()?;

    let log_fd = rustix::io::fcntl_dupfd_cloexec(status.as_fd(), 3)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    writeln!(status, "{STATUS_PREFIX}ready {nanos}")?;
    // SAFETY: `log_fd` is a fresh descriptor nobody else owns; ownership
    // passes to libkrun's logger.
    unsafe { prepared.enter_with_log(log_fd.into_raw_fd()) }
}

/// Reads `<len>\n<json>` from stdin, then keeps stdin as the lifeline.
fn read_config() -> MonocoreResult<MicroVmConfig> {
    let stdin = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?;
    let mut reader = BufReader::new(std::fs::File::from(stdin));
    let mut header = String::new();
    (&mut reader).take(32).read_line(&mut header)?;
    let len: usize = header
        .trim()
        .parse()
        .map_err(|_| MonocoreError::HelperFailed {
            message: format!("bad config header {header:?}: expected a byte length"),
        })?;
    if len > MAX_CONFIG_LEN {
        return Err(MonocoreError::HelperFailed {
            message: format!("config of {len} bytes is larger than {MAX_CONFIG_LEN}"),
        });
    }
    let mut json = vec![0; len];
    reader.read_exact(&mut json)?;
    let config = serde_json::from_slice(&json).map_err(|e| MonocoreError::HelperFailed {
        message: format!("bad config JSON: {e}"),
    })?;

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
                        unsafe { libc::_exit(LIFELINE_EXIT) }
                    }
                }
            }
        })?;
    Ok(config)
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

/// Encodes an error as one status line (after the prefix).
fn encode_error(error: &MonocoreError) -> String {
    match error {
        MonocoreError::Krun { call, errno } => format!("error-krun {call} {errno}"),
        other => format!("error {}", other.to_string().replace('\n', " ")),
    }
}

/// A status line from the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// About to call `krun_start_enter`, at this many nanoseconds since the
    /// Unix epoch.
    Ready(u128),
    /// Failed before entering.
    Failed(HelperError),
}

/// What the helper reported when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelperError {
    Krun { call: &'static str, errno: i32 },
    Other(String),
}

impl HelperError {
    pub(crate) fn into_error(self) -> MonocoreError {
        match self {
            Self::Krun { call, errno } => MonocoreError::Krun { call, errno },
            Self::Other(message) => MonocoreError::HelperFailed { message },
        }
    }
}

/// Parses a status line (`None` if `line` is not one).
pub(crate) fn parse_status(line: &str) -> Option<Status> {
    let rest = line.strip_prefix(STATUS_PREFIX)?;
    if let Some(nanos) = rest.strip_prefix("ready ") {
        return nanos.trim().parse().ok().map(Status::Ready);
    }
    if let Some(krun) = rest.strip_prefix("error-krun ") {
        let mut parts = krun.split_whitespace();
        let name = parts.next()?;
        let errno = parts.next()?.parse().ok()?;
        let call = super::krun::CALL_NAMES.iter().find(|c| **c == name)?;
        return Some(Status::Failed(HelperError::Krun { call, errno }));
    }
    rest.strip_prefix("error ")
        .map(|m| Status::Failed(HelperError::Other(m.to_owned())))
}

/// The VMM's own exit-code decision, from its debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitSource {
    /// The guest reported this exit code.
    Guest(i32),
    /// The guest never reported one; a vCPU stopped with this code.
    Vcpu(i32),
}

/// One line of the VMM's env_logger output: `[<time> <LEVEL> <target>] msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine<'a> {
    pub(crate) level: log_level::Level,
    pub(crate) target: &'a str,
    pub(crate) message: &'a str,
}

pub(crate) mod log_level {
    /// A log record's level (env_logger's names).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) enum Level {
        Error = 1,
        Warn = 2,
        Info = 3,
        Debug = 4,
        Trace = 5,
    }

    pub(crate) fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "ERROR" => Level::Error,
            "WARN" => Level::Warn,
            "INFO" => Level::Info,
            "DEBUG" => Level::Debug,
            "TRACE" => Level::Trace,
            _ => return None,
        })
    }
}

/// Parses a log record header line. Continuation lines of multi-line
/// records are indented, so they never start with `[`: guest-controlled text
/// (e.g. kernel console lines, logged under target `init_or_kernel`) can
/// never pass for a record of another target.
pub(crate) fn parse_log_line(line: &str) -> Option<LogLine<'_>> {
    let rest = line.strip_prefix('[')?;
    let (header, message) = rest.split_once("] ")?;
    let mut tokens = header.split_whitespace();
    let target = tokens.next_back()?;
    let level = tokens.find_map(log_level::parse)?;
    Some(LogLine {
        level,
        target,
        message,
    })
}

/// The VMM's exit-code line, if `line` is one.
pub(crate) fn parse_exit_source(line: &LogLine<'_>) -> Option<ExitSource> {
    if line.target != "krun_vmm" || line.level != log_level::Level::Debug {
        return None;
    }
    if let Some(code) = line.message.strip_prefix("using vmm exit code: ") {
        return code.trim().parse().ok().map(ExitSource::Guest);
    }
    line.message
        .strip_prefix("using vcpu exit code: ")
        .and_then(|code| code.trim().parse().ok())
        .map(ExitSource::Vcpu)
}

/// The `RUST_LOG` filter for a helper whose user asked for `level`: at least
/// errors (for the boot-failure report), plus libkrun's exit-code debug
/// lines.
pub(crate) fn log_filter(level: super::LogLevel) -> String {
    match level {
        super::LogLevel::Off | super::LogLevel::Error => "error,krun_vmm=debug".to_owned(),
        super::LogLevel::Warn | super::LogLevel::Info => format!("{},krun_vmm=debug", level.name()),
        super::LogLevel::Debug | super::LogLevel::Trace => level.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_round_trip() {
        assert_eq!(
            parse_status("monocore-vmm ready 1700000000000000000"),
            Some(Status::Ready(1_700_000_000_000_000_000))
        );
        let krun = MonocoreError::Krun {
            call: "krun_set_root",
            errno: 22,
        };
        let line = format!("{STATUS_PREFIX}{}", encode_error(&krun));
        assert_eq!(
            parse_status(&line),
            Some(Status::Failed(HelperError::Krun {
                call: "krun_set_root",
                errno: 22
            }))
        );
        let other = MonocoreError::HelperFailed {
            message: "a\nb".into(),
        };
        let line = format!("{STATUS_PREFIX}{}", encode_error(&other));
        assert_eq!(
            parse_status(&line),
            Some(Status::Failed(HelperError::Other(
                "the VM helper failed before entering the VM: a b".into()
            )))
        );
        assert_eq!(parse_status("monocore-vmm error-krun krun_evil 1"), None);
        assert_eq!(parse_status("[x ERROR vmm] monocore-vmm ready 1"), None);
    }

    #[test]
    fn log_lines_and_exit_sources_parse() {
        let line =
            parse_log_line("[2025-01-01T00:00:00.000000Z DEBUG krun_vmm] using vmm exit code: 3")
                .unwrap();
        assert_eq!(parse_exit_source(&line), Some(ExitSource::Guest(3)));
        let line =
            parse_log_line("[2025-01-01T00:00:00.000000Z DEBUG krun_vmm] using vcpu exit code: 1")
                .unwrap();
        assert_eq!(parse_exit_source(&line), Some(ExitSource::Vcpu(1)));
        let line = parse_log_line(
            "[2025-01-01T00:00:00.000000Z ERROR krun_vmm::linux::vstate] Received KVM_EXIT_INTERNAL_ERROR signal",
        )
        .unwrap();
        assert_eq!(line.level, log_level::Level::Error);
        assert_eq!(line.target, "krun_vmm::linux::vstate");
        assert_eq!(line.message, "Received KVM_EXIT_INTERNAL_ERROR signal");
        assert_eq!(parse_exit_source(&line), None);
        // Without a timestamp, and with a padded level.
        let line = parse_log_line("[INFO  krun_vmm] Vmm is stopping.").unwrap();
        assert_eq!(line.level, log_level::Level::Info);
    }

    #[test]
    fn guest_text_cannot_forge_an_exit_line() {
        // Kernel console output is logged under `init_or_kernel`.
        let forged = parse_log_line(
            "[2025-01-01T00:00:00.000000Z ERROR init_or_kernel] [t DEBUG krun_vmm] using vmm exit code: 0",
        )
        .unwrap();
        assert_eq!(parse_exit_source(&forged), None);
        // Continuation lines are indented.
        assert_eq!(
            parse_log_line("    [t DEBUG krun_vmm] using vmm exit code: 0"),
            None
        );
    }

    #[test]
    fn log_filter_always_keeps_errors_and_exit_lines() {
        assert_eq!(
            log_filter(super::super::LogLevel::Off),
            "error,krun_vmm=debug"
        );
        assert_eq!(
            log_filter(super::super::LogLevel::Info),
            "info,krun_vmm=debug"
        );
        assert_eq!(log_filter(super::super::LogLevel::Trace), "trace");
    }
}
