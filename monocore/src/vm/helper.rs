//! The VM helper process: the child that [`MicroVm::spawn`] runs the VM in
//! (this program itself, see the `self_helper` module, or a separate binary
//! whose `main` calls [`helper_main`]).
//!
//! # Protocol (private to monocore; both ends are in this crate)
//!
//! - **stdin**: the parent writes one line with the byte length of the
//!   request, then the request as JSON: the config ([`MicroVmConfig`]'s serde
//!   form), the resolved kernel, and the VM's private root, which the parent
//!   made and filled (the agent and its run spec) and removes when the VM
//!   has ended. It then
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
    os::fd::{AsFd, OwnedFd},
    path::PathBuf,
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use monocore_rules::limits;
use serde::{Deserialize, Serialize};

use super::{MicroVm, MicroVmConfig};
use crate::{MonocoreError, MonocoreResult, kernel::GuestKernel};

/// What the parent sends the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    /// The config; validated again by the helper.
    pub(crate) config: MicroVmConfig,
    /// The kernel to boot.
    pub(crate) kernel: GuestKernel,
    /// The VM's private root, made and filled by the parent.
    pub(crate) guest_root: PathBuf,
}

/// Prefix of every status line the helper writes.
pub(crate) const STATUS_PREFIX: &str = "monocore-vmm ";
/// The exit code of a helper that failed before entering the VM.
pub(crate) const HELPER_FAILED_EXIT: u8 = 70;
/// The exit code of a helper whose parent went away.
const LIFELINE_EXIT: i32 = 71;

/// The entry point of a separate VM helper binary.
///
/// You do not need this: every program that links monocore is its own VM
/// helper (see [`MicroVm::spawn`](super::MicroVm::spawn)). It is for those
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
/// it. It reads a config from stdin as described in the module docs,
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
        Err(_) => return HELPER_FAILED_EXIT,
    };
    let mut status = std::fs::File::from(private);
    match run(&mut status) {
        Ok(never) => match never {},
        Err(error) => {
            let _ = writeln!(status, "{STATUS_PREFIX}{}", encode_error(&error));
            HELPER_FAILED_EXIT
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
    redirect_stdio()?;
    let vm = MicroVm::from_config(request.config)?;
    let prepared = vm.prepare_in(&request.guest_root, &request.kernel)?;

    let log_fd = rustix::io::fcntl_dupfd_cloexec(status.as_fd(), 3)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    writeln!(status, "{STATUS_PREFIX}ready {nanos}")?;
    prepared.enter_with_log(log_fd)
}

/// Reads `<len>\n<json>` from stdin, then keeps stdin as the lifeline.
fn read_request() -> MonocoreResult<HelperRequest> {
    let stdin = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?;
    let mut reader = BufReader::new(std::fs::File::from(stdin));
    let request = decode_request(&mut reader)?;

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
    Ok(request)
}

fn channel_error(message: String) -> MonocoreError {
    MonocoreError::HelperFailed { message }
}

/// Decodes one `<len>\n<json>` request from the parent.
///
/// Bounded: the header is at most 32 bytes; a length above
/// [`limits::MAX_HELPER_CONFIG_LEN`] is refused before anything is read;
/// the buffer grows only with the bytes that actually arrive (a lying length
/// allocates nothing up front); a short stream is an error. The config is
/// *not* trusted for being well-formed JSON: the caller validates it again
/// (`MicroVm::from_config`).
pub(crate) fn decode_request(reader: &mut impl BufRead) -> MonocoreResult<HelperRequest> {
    let mut header = Vec::new();
    (&mut *reader).take(32).read_until(b'\n', &mut header)?;
    let len: usize = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| h.strip_suffix('\n'))
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| {
            channel_error(format!(
                "bad config header {:?}: expected a byte length and a newline",
                String::from_utf8_lossy(&header)
            ))
        })?;
    if len > limits::MAX_HELPER_CONFIG_LEN {
        return Err(channel_error(format!(
            "config of {len} bytes is larger than the limit of {} bytes",
            limits::MAX_HELPER_CONFIG_LEN
        )));
    }
    let mut json = Vec::new();
    let read = (&mut *reader).take(len as u64).read_to_end(&mut json)?;
    if read != len {
        return Err(channel_error(format!(
            "config ended after {read} of {len} bytes"
        )));
    }
    serde_json::from_slice(&json).map_err(|e| channel_error(format!("bad request JSON: {e}")))
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

    fn decode(bytes: &[u8]) -> MonocoreResult<MicroVmConfig> {
        decode_request(&mut std::io::Cursor::new(bytes)).map(|r| r.config)
    }

    fn request(config: &MicroVmConfig) -> HelperRequest {
        HelperRequest {
            config: config.clone(),
            kernel: GuestKernel::Elf {
                path: "/k/vmlinux".into(),
                cmdline: "quiet".into(),
            },
            guest_root: "/cache/vms/run-x/guest".into(),
        }
    }

    fn framed(json: &[u8]) -> Vec<u8> {
        let mut out = format!("{}\n", json.len()).into_bytes();
        out.extend_from_slice(json);
        out
    }

    #[test]
    fn config_channel_round_trips_a_request() {
        let mut config = MicroVmConfig::new("/rootfs", 256);
        config.args = vec!["a b".into()];
        let sent = request(&config);
        let json = serde_json::to_vec(&sent).unwrap();
        let mut stream = framed(&json);
        // Bytes after the request (there are none in the protocol) are not read.
        stream.extend_from_slice(b"trailing");
        let got = decode_request(&mut std::io::Cursor::new(stream)).unwrap();
        assert_eq!(got, sent);
    }

    #[test]
    fn config_channel_refuses_a_huge_length_before_allocating() {
        let start = std::time::Instant::now();
        for header in [
            format!("{}\n", limits::MAX_HELPER_CONFIG_LEN + 1),
            format!("{}\n", usize::MAX),
        ] {
            match decode(header.as_bytes()) {
                Err(MonocoreError::HelperFailed { message }) => {
                    assert!(message.contains("larger than the limit"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        // A length within the limit but a short stream: an error, and the
        // buffer only ever held the bytes that arrived.
        let lying = format!("{}\n{{}}", limits::MAX_HELPER_CONFIG_LEN);
        match decode(lying.as_bytes()) {
            Err(MonocoreError::HelperFailed { message }) => assert_eq!(
                message,
                format!(
                    "config ended after 2 of {} bytes",
                    limits::MAX_HELPER_CONFIG_LEN
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn config_channel_refuses_bad_headers_and_json() {
        for bad in [
            &b""[..],
            b"12",                                          // no newline
            b"-1\n{}",                                      // not a length
            b" 2\n{}",                                      // not exactly a length
            b"000000000000000000000000000000000000002\n{}", // header > 32 bytes
            b"2\n[]",                                       // JSON, but not a request
            b"3\n{\xff}",                                   // not UTF-8
        ] {
            assert!(
                matches!(decode(bad), Err(MonocoreError::HelperFailed { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_helper_validates_the_config_again() {
        // Well-formed JSON is not trusted: `run` passes it to
        // `MicroVm::from_config`, which validates.
        let root = tempfile::tempdir().unwrap();
        let mut config = MicroVmConfig::new(root.path(), 256);
        config.args = vec!["x".into()]; // args without exec_path
        let json = serde_json::to_vec(&request(&config)).unwrap();
        let decoded = decode(&framed(&json)).unwrap();
        assert!(matches!(
            MicroVm::from_config(decoded),
            Err(MonocoreError::InvalidMicroVmConfig(_))
        ));
    }

    #[test]
    fn every_valid_config_fits_the_helper_channel() {
        use crate::config::{PathPair, PortPair};
        use crate::vm::LinuxRlimit;
        // The worst case the limits allow: every path at its maximum length
        // and the command at the most any stack limit gives (6 MiB), all made
        // of bytes JSON escapes to six (`\u0001`).
        let ctl = |n: usize| "\u{1}".repeat(n);
        let path_max = limits::MAX_PATH_LEN;
        let dir = |i: usize| {
            let guest = format!("/{i:04}{}", ctl(path_max - 5));
            PathPair::with_distinct(ctl(path_max).into(), guest.into())
        };
        let mut config = MicroVmConfig::new(format!("/{}", ctl(path_max - 1)), 1);
        config.local_only = false;
        config.mapped_dirs = (0..limits::max_mapped_dirs(true)).map(dir).collect();
        config.port_map = (1..=limits::MAX_PORT_MAPPINGS)
            .map(|p| {
                let p = u16::try_from(p).unwrap();
                PortPair::with_distinct(p, p)
            })
            .collect();
        config.rlimits = (0..16)
            .map(|r| {
                format!("{r}=18446744073709551615:18446744073709551615")
                    .parse::<LinuxRlimit>()
                    .unwrap()
            })
            .collect();
        config.console_output = Some(ctl(path_max).into());
        config.exec_path = Some("/x".into());
        let room = limits::command_space(Some(u64::MAX)) - (2 + 9);
        let n = room / (limits::MAX_STRING_LEN + 9);
        config.args = vec![ctl(limits::MAX_STRING_LEN); n];
        config.validate_values().unwrap();

        let worst = serde_json::to_vec(&request(&config)).unwrap().len();
        assert!(
            worst <= limits::MAX_HELPER_CONFIG_LEN,
            "{worst} > {}",
            limits::MAX_HELPER_CONFIG_LEN
        );
        assert!(
            worst > limits::MAX_HELPER_CONFIG_LEN / 2,
            "not a worst case: {worst}"
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
