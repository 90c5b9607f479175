//! The protocol between the process that spawns a VM (the parent) and its
//! VM helper (the child the VM runs in): both ends, encoder and decoder, in
//! this one file. It is private to monocore (both ends are this crate, in
//! the same binary unless `SpawnOptions::helper_path` names another).
//!
//! - **stdin**: the parent writes one line with the byte length of the
//!   request, then the request as JSON ([`HelperRequest`]: the config in
//!   [`MicroVmConfig`]'s serde form, the resolved kernel, and the VM's run
//!   directory, which the parent made and filled, with the agent and its run
//!   spec, and removes when the VM has ended). It then keeps stdin open as a
//!   *lifeline*: when the parent dies, stdin reaches EOF and the helper ends
//!   at once, so a VM never outlives its owner. The guest itself gets an
//!   empty stdin.
//! - **stderr**: a private channel to the parent, which the guest cannot
//!   write to. It carries status lines ([`Status`]: `monocore-vmm ready
//!   <unix-nanos>`, `monocore-vmm error …`, `monocore-vmm expired
//!   <millis>` when it ends the VM at its time to live) and the VMM's log (env_logger
//!   lines `[<time> <LEVEL> <target>] <message>`, [`LogLine`]).
//! - **stdout**: the guest console (the guest's stdout and stderr).
//! - **exit status**: after `ready`, the VMM exits the process with the
//!   guest's exit code. Whether that code came from the guest or from a VMM
//!   failure is told by libkrun's own log line ([`ExitSource`]: `using vmm
//!   exit code: N` means the guest reported N; `using vcpu exit code: N`
//!   means it never did), which the parent requests with
//!   `RUST_LOG=…,krun_vmm=debug` ([`log_filter`]).

use std::{
    io::{BufRead, Read},
    path::PathBuf,
    time::Duration,
};

use monocore_rules::limits;
use serde::{Deserialize, Serialize};

use crate::{
    config::{LogLevel, MicroVmConfig},
    error::{ErrorChain, HelperError, MonocoreError},
    host::kernel::GuestKernel,
};

/// What the parent sends the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    /// The config; validated again by the helper.
    pub(crate) config: MicroVmConfig,
    /// The kernel to boot.
    pub(crate) kernel: GuestKernel,
    /// The VM's run directory, made and filled by the parent.
    pub(crate) run_dir: PathBuf,
    /// The network as the parent planned it (passt's path, the allow-list
    /// resolved), with `net`.
    #[serde(default)]
    pub(crate) net: Option<crate::net::NetPlan>,
    /// How long the VM may run (`SpawnOptions::time_to_live`); the helper
    /// ends it then, with an `expired` status line.
    #[serde(default)]
    pub(crate) time_to_live: Option<Duration>,
}

/// Prefix of every status line the helper writes.
pub(crate) const STATUS_PREFIX: &str = "monocore-vmm ";
/// The exit code of a helper that failed before entering the VM.
pub(crate) const HELPER_FAILED_EXIT: u8 = 70;
/// The exit code of a helper whose parent went away.
pub(crate) const LIFELINE_EXIT: i32 = 71;
/// The exit code of a helper that ended its VM at its time to live.
pub(crate) const EXPIRED_EXIT: i32 = 72;
/// The longest request header: a byte length and a newline.
const MAX_HEADER: u64 = 32;

/// Encodes `request` as `<len>\n<json>`; a request the helper would refuse
/// as too large is refused here, before any process starts.
pub(crate) fn encode_request(request: &HelperRequest) -> Result<Vec<u8>, HelperError> {
    let json = serde_json::to_vec(request).map_err(HelperError::Serialize)?;
    if json.len() > limits::MAX_HELPER_CONFIG_LEN {
        return Err(HelperError::RequestTooLarge {
            len: json.len(),
            max: limits::MAX_HELPER_CONFIG_LEN,
        });
    }
    let mut framed = format!("{}\n", json.len()).into_bytes();
    framed.extend_from_slice(&json);
    Ok(framed)
}

/// Decodes one `<len>\n<json>` request.
///
/// Bounded: the header is at most 32 bytes; a length above
/// [`limits::MAX_HELPER_CONFIG_LEN`] is refused before anything is read;
/// the buffer grows only with the bytes that actually arrive (a lying length
/// allocates nothing up front); a short stream is an error. Nothing after
/// the request is read. The config is *not* trusted for being well-formed
/// JSON: the helper validates it again (`MicroVm::from_config`).
pub(crate) fn decode_request(reader: &mut impl BufRead) -> Result<HelperRequest, HelperError> {
    let mut header = Vec::new();
    (&mut *reader)
        .take(MAX_HEADER)
        .read_until(b'\n', &mut header)
        .map_err(HelperError::Read)?;
    let len: usize = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| h.strip_suffix('\n'))
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| HelperError::BadHeader {
            header: String::from_utf8_lossy(&header).into_owned(),
        })?;
    if len > limits::MAX_HELPER_CONFIG_LEN {
        return Err(HelperError::RequestTooLarge {
            len,
            max: limits::MAX_HELPER_CONFIG_LEN,
        });
    }
    let mut json = Vec::new();
    let read = (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut json)
        .map_err(HelperError::Read)?;
    if read != len {
        return Err(HelperError::Truncated { read, len });
    }
    serde_json::from_slice(&json).map_err(HelperError::BadRequest)
}

/// A status line from the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// About to call `krun_start_enter`, at this many nanoseconds since the
    /// Unix epoch.
    Ready(u128),
    /// Failed before entering.
    Failed(Failure),
    /// Ended the VM at its time to live (this many milliseconds).
    Expired(Duration),
}

/// What the helper reported when it failed: a libkrun call, typed, or
/// any other error as its text (with its causes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Krun { call: &'static str, errno: i32 },
    Reported(String),
}

impl Failure {
    pub(crate) fn into_error(self) -> MonocoreError {
        match self {
            Self::Krun { call, errno } => MonocoreError::Krun { call, errno },
            Self::Reported(text) => HelperError::Reported(text).into(),
        }
    }
}

/// The `ready` line (without its newline).
pub(crate) fn ready_line(nanos: u128) -> String {
    format!("{STATUS_PREFIX}ready {nanos}")
}

/// The `expired` line (without its newline): the helper ends the VM at its
/// time to live `ttl`.
pub(crate) fn expired_line(ttl: Duration) -> String {
    format!("{STATUS_PREFIX}expired {}", ttl.as_millis())
}

/// The line that reports `error` (without its newline): a libkrun call
/// typed, anything else as its one-line text with every cause.
pub(crate) fn failure_line(error: &MonocoreError) -> String {
    match error {
        MonocoreError::Krun { call, errno } => format!("{STATUS_PREFIX}error-krun {call} {errno}"),
        other => format!(
            "{STATUS_PREFIX}error {}",
            ErrorChain(other).to_string().replace('\n', " ")
        ),
    }
}

/// Parses a status line (`None` if `line` is not one).
pub(crate) fn parse_status(line: &str) -> Option<Status> {
    let rest = line.strip_prefix(STATUS_PREFIX)?;
    if let Some(nanos) = rest.strip_prefix("ready ") {
        return nanos.trim().parse().ok().map(Status::Ready);
    }
    if let Some(millis) = rest.strip_prefix("expired ") {
        let millis = millis.trim().parse().ok()?;
        return Some(Status::Expired(Duration::from_millis(millis)));
    }
    if let Some(krun) = rest.strip_prefix("error-krun ") {
        let mut parts = krun.split_whitespace();
        let name = parts.next()?;
        let errno = parts.next()?.parse().ok()?;
        let call = super::krun::CALL_NAMES.iter().find(|c| **c == name)?;
        return Some(Status::Failed(Failure::Krun { call, errno }));
    }
    rest.strip_prefix("error ")
        .map(|m| Status::Failed(Failure::Reported(m.to_owned())))
}

/// The VMM's own exit-code decision, from its debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitSource {
    /// The guest reported this exit code.
    Guest(i32),
    /// The guest never reported one; a vCPU stopped with this code.
    Vcpu(i32),
}

/// One record header line of the VMM's env_logger output:
/// `[<time> <LEVEL> <target>] <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine<'a> {
    pub(crate) level: LogLevel,
    pub(crate) target: &'a str,
    pub(crate) message: &'a str,
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
    let level = tokens.find_map(LogLevel::of_record)?;
    Some(LogLine {
        level,
        target,
        message,
    })
}

/// The VMM's exit-code line, if `line` is one.
pub(crate) fn parse_exit_source(line: &LogLine<'_>) -> Option<ExitSource> {
    if line.target != "krun_vmm" || line.level != LogLevel::Debug {
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
pub(crate) fn log_filter(level: LogLevel) -> String {
    match level {
        LogLevel::Off | LogLevel::Error => "error,krun_vmm=debug".to_owned(),
        LogLevel::Warn | LogLevel::Info => format!("{},krun_vmm=debug", level.name()),
        LogLevel::Debug | LogLevel::Trace => level.name().to_owned(),
    }
}

#[cfg(test)]
mod tests;
