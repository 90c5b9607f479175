//! The CRI container log file, as kubelet reads it (`kubectl logs`): one
//! entry a line, `<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P>
//! <text>\n`, where `P` marks a partial line that the next entries of the
//! same stream continue, and `F` the end of a line. Every line is parsed
//! strictly: a line that is not exactly this is an error, with its number.

use std::{
    path::Path,
    time::{Duration, Instant},
};

/// The stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The time, as written (`2006-01-02T15:04:05.999999999Z07:00`).
    pub time: String,
    /// The stream.
    pub stream: Stream,
    /// Whether the entry is a partial line (`P`), continued by the next
    /// entry of the same stream.
    pub partial: bool,
    /// The text, without the line's newline.
    pub text: String,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<LogEntry, String> {
    let mut fields = line.splitn(4, ' ');
    let (Some(time), Some(stream), Some(tag), Some(text)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!(
            "{line:?}: not `<time> <stream> <tag> <text>` (four space-separated fields)"
        ));
    };
    check_time(time).map_err(|e| format!("{line:?}: time {time:?}: {e}"))?;
    let stream = match stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        other => {
            return Err(format!(
                "{line:?}: stream {other:?} is neither `stdout` nor `stderr`"
            ));
        }
    };
    let partial = match tag {
        "F" => false,
        "P" => true,
        other => return Err(format!("{line:?}: tag {other:?} is neither `F` nor `P`")),
    };
    Ok(LogEntry {
        time: time.to_owned(),
        stream,
        partial,
        text: text.to_owned(),
    })
}

/// Parses a whole log: every line must end with a newline.
pub fn parse(log: &str) -> Result<Vec<LogEntry>, String> {
    if !log.is_empty() && !log.ends_with('\n') {
        return Err(format!(
            "the log's last line has no newline: {:?}",
            log.rsplit('\n').next().unwrap_or_default()
        ));
    }
    log.lines()
        .enumerate()
        .map(|(i, line)| parse_line(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads and parses the log at `path`, leaving out a last line still being
/// written (no newline yet). A missing file is an empty log.
pub fn read(path: &Path) -> Result<Vec<LogEntry>, String> {
    let log = match std::fs::read_to_string(path) {
        Ok(log) => log,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let complete = log.rfind('\n').map_or("", |end| &log[..=end]);
    parse(complete).map_err(|e| format!("{}: {e}", path.display()))
}

/// The lines of `stream` in `entries`, partial entries joined with what
/// continues them; a line not yet ended (its last entry `P`) is left out.
pub fn lines(entries: &[LogEntry], stream: Stream) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for entry in entries.iter().filter(|e| e.stream == stream) {
        current.push_str(&entry.text);
        if !entry.partial {
            lines.push(std::mem::take(&mut current));
        }
    }
    lines
}

/// Waits (polling, at most `timeout`) until the log at `path` has the line
/// `line` on `stream`; returns its entries then. Panics with the log so far
/// when it does not come, or when the log does not parse.
pub fn wait_for_line(path: &Path, stream: Stream, line: &str, timeout: Duration) -> Vec<LogEntry> {
    let deadline = Instant::now() + timeout;
    loop {
        let entries = read(path).unwrap_or_else(|e| panic!("{e}"));
        if lines(&entries, stream).iter().any(|l| l == line) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "no {stream:?} line {line:?} in {} within {timeout:?}: {entries:#?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks that `time` is RFC 3339 with 0 to 9 fractional digits, as Go's
/// `time.RFC3339Nano` writes it: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn check_time(time: &str) -> Result<(), String> {
    let b = time.as_bytes();
    let digits = |range: std::ops::Range<usize>, what: &str, max: u32| -> Result<u32, String> {
        let part = time
            .get(range)
            .filter(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("no {what}"))?;
        let n: u32 = part.parse().map_err(|_| format!("bad {what}"))?;
        if n > max {
            return Err(format!("{what} {n} is over {max}"));
        }
        Ok(n)
    };
    let sep = |i: usize, c: u8| -> Result<(), String> {
        if b.get(i) == Some(&c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at {i}", char::from(c)))
        }
    };
    digits(0..4, "year", 9999)?;
    sep(4, b'-')?;
    if digits(5..7, "month", 12)? == 0 {
        return Err("month 0".to_owned());
    }
    sep(7, b'-')?;
    if digits(8..10, "day", 31)? == 0 {
        return Err("day 0".to_owned());
    }
    sep(10, b'T')?;
    digits(11..13, "hour", 23)?;
    sep(13, b':')?;
    digits(14..16, "minute", 59)?;
    sep(16, b':')?;
    digits(17..19, "second", 60)?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return Err(format!("{n} fractional digits (1 to 9 allowed)"));
        }
        i += 1 + n;
    }
    match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => Ok(()),
        Some(b'+' | b'-') if i + 6 == b.len() => {
            digits(i + 1..i + 3, "zone hour", 23)?;
            sep(i + 3, b':')?;
            digits(i + 4..i + 6, "zone minute", 59).map(drop)
        }
        _ => Err(format!("expected `Z` or `±HH:MM` at {i}, ending the time")),
    }
}
