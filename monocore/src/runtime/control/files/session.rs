//! One file session with a guest agent: requests sent and answers read on
//! one connection, every read and write bounded by the operation's
//! deadline, every answer checked (its kind, its size, its names) before
//! it is used.

use std::{
    io::{self, Read, Write},
    os::unix::{ffi::OsStrExt, net::UnixStream},
    path::Path,
    time::{Duration, Instant},
};

use monocore_agent::{
    control::{
        AgentMessage, ControlError as WireError, Entry, FileTarget, HostMessage, MAX_DATA,
        MAX_MODE, Make, check_entry_name, check_link,
    },
    report::{Report, Step, escape},
};

use crate::error::{ControlError, GuestFileError, MonocoreError, MonocoreResult};

const EFBIG: i32 = 27;

/// The connection, with each read and write given only the time left
/// before the deadline (a guest that sends a byte at a time gets no more).
struct Bounded {
    conn: UnixStream,
    deadline: Instant,
}

impl Bounded {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.set_read_timeout(Some(self.left()?))?;
        self.conn.read(buf)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.set_write_timeout(Some(self.left()?))?;
        self.conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A guest path as errors show it (it may come from the guest).
pub(super) fn shown(path: &[u8]) -> String {
    escape(path, 256)
}

/// A file session: requests for one place (a container or the VM).
pub(super) struct Session {
    conn: Bounded,
    container: Option<Vec<u8>>,
    timeout: Duration,
}

impl Session {
    /// A session on `conn` (past the `Hello`s) for `container`, which must
    /// end by `deadline` (`timeout` after it started).
    pub(super) fn new(
        conn: UnixStream,
        container: Option<Vec<u8>>,
        deadline: Instant,
        timeout: Duration,
    ) -> Self {
        Self {
            conn: Bounded { conn, deadline },
            container,
            timeout,
        }
    }

    /// The checked target of a request for `path`.
    fn target(&self, path: &[u8]) -> Result<FileTarget, GuestFileError> {
        let target = FileTarget {
            container: self.container.clone(),
            path: path.to_vec(),
        };
        target.check().map_err(|e| GuestFileError::Invalid {
            field: e.field,
            value: escape(
                match e.field {
                    monocore_agent::control::FileField::Container => {
                        target.container.as_deref().unwrap_or_default()
                    }
                    _ => path,
                },
                256,
            ),
            problem: e.problem,
        })?;
        Ok(target)
    }

    /// The error for a failed read or write of the connection: the
    /// deadline, or how the channel broke.
    fn channel_error(&self, e: WireError, path: &[u8]) -> MonocoreError {
        match &e {
            WireError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                GuestFileError::TimedOut {
                    path: shown(path),
                    timeout: self.timeout,
                }
                .into()
            }
            _ => ControlError::from(e).into(),
        }
    }

    fn send(&mut self, message: &HostMessage, path: &[u8]) -> MonocoreResult<()> {
        message
            .write(&mut self.conn)
            .map_err(|e| self.channel_error(e, path))
    }

    fn recv(&mut self, path: &[u8]) -> MonocoreResult<Option<AgentMessage>> {
        AgentMessage::read(&mut self.conn).map_err(|e| self.channel_error(e, path))
    }

    /// The error for an answer to `request` that is neither what was
    /// hoped for nor `Done`.
    fn refusal(answer: Option<AgentMessage>, request: &'static str, path: &[u8]) -> MonocoreError {
        match answer {
            Some(AgentMessage::Failed(Report::Failed { step, errno, .. })) => {
                GuestFileError::Guest {
                    path: shown(path),
                    step,
                    errno,
                }
                .into()
            }
            other => super::super::refusal(other, request),
        }
    }

    /// Waits for `Done`.
    fn done(&mut self, request: &'static str, path: &[u8]) -> MonocoreResult<()> {
        match self.recv(path)? {
            Some(AgentMessage::Done) => Ok(()),
            other => Err(Self::refusal(other, request, path)),
        }
    }

    /// Writes what `source` gives to the guest file `path` with `mode`
    /// (`host` names the source in errors); the bytes written.
    pub(super) fn write(
        &mut self,
        path: &[u8],
        mode: u32,
        source: &mut dyn Read,
        host: &Path,
    ) -> MonocoreResult<u64> {
        if mode > MAX_MODE {
            return Err(GuestFileError::InvalidMode {
                path: shown(path),
                mode,
            }
            .into());
        }
        let target = self.target(path)?;
        self.send(&HostMessage::WriteFile { target, mode }, path)?;
        let mut buf = vec![0u8; MAX_DATA];
        let mut total: u64 = 0;
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(GuestFileError::Host {
                        path: host.to_path_buf(),
                        source,
                    }
                    .into());
                }
            };
            let chunk = buf.get(..n).unwrap_or_default().to_vec();
            self.send(&HostMessage::Data(chunk), path)?;
            total = total.saturating_add(n as u64);
        }
        self.send(&HostMessage::Data(Vec::new()), path)?;
        self.done("WriteFile", path)?;
        Ok(total)
    }

    /// Reads the guest file `path` into `sink` (`host` names it in errors),
    /// at most `max` bytes: a guest that sends more is cut off with
    /// [`GuestFileError::TooLarge`] (`shown_max` in it), and nothing past
    /// `max` reaches the sink. The bytes read.
    pub(super) fn read(
        &mut self,
        path: &[u8],
        max: u64,
        shown_max: u64,
        sink: &mut dyn Write,
        host: &Path,
    ) -> MonocoreResult<u64> {
        let too_large = || GuestFileError::TooLarge {
            path: shown(path),
            max: shown_max,
        };
        let target = self.target(path)?;
        self.send(&HostMessage::ReadFile { target, max }, path)?;
        let mut total: u64 = 0;
        loop {
            match self.recv(path)? {
                Some(AgentMessage::Data(data)) => {
                    total = total.saturating_add(data.len() as u64);
                    if total > max {
                        return Err(too_large().into());
                    }
                    sink.write_all(&data)
                        .map_err(|source| GuestFileError::Host {
                            path: host.to_path_buf(),
                            source,
                        })?;
                }
                Some(AgentMessage::Done) => return Ok(total),
                Some(AgentMessage::Failed(Report::Failed {
                    step: Step::Read,
                    errno: EFBIG,
                    ..
                })) => return Err(too_large().into()),
                other => return Err(Self::refusal(other, "ReadFile", path)),
            }
        }
    }

    /// Makes a directory or a symlink at `path`.
    pub(super) fn make(&mut self, path: &[u8], make: Make) -> MonocoreResult<()> {
        if let Make::Symlink { target } = &make {
            check_link(target).map_err(|e| GuestFileError::Invalid {
                field: e.field,
                value: shown(target),
                problem: e.problem,
            })?;
        }
        if let Make::Dir { mode } = make
            && mode > MAX_MODE
        {
            return Err(GuestFileError::InvalidMode {
                path: shown(path),
                mode,
            }
            .into());
        }
        let target = self.target(path)?;
        self.send(&HostMessage::Make { target, make }, path)?;
        self.done("Make", path)
    }

    /// `path`'s entry (its name empty) and, with `list` for a directory,
    /// its entries (each name checked), at most `max_entries` of them.
    pub(super) fn stat(
        &mut self,
        path: &[u8],
        list: bool,
        max_entries: u64,
    ) -> MonocoreResult<(Entry, Vec<Entry>)> {
        let target = self.target(path)?;
        self.send(&HostMessage::Stat { target, list }, path)?;
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            match self.recv(path)? {
                Some(AgentMessage::Entries(batch)) => {
                    let count = entries.len().saturating_add(batch.len()) as u64;
                    // The path's own entry is not counted.
                    if count > max_entries.saturating_add(1) {
                        return Err(GuestFileError::TooManyEntries {
                            path: shown(path),
                            max: max_entries,
                        }
                        .into());
                    }
                    entries.extend(batch);
                }
                Some(AgentMessage::Done) => break,
                other => return Err(Self::refusal(other, "Stat", path)),
            }
        }
        let mut entries = entries.into_iter();
        let top = match entries.next() {
            Some(top) if top.name.is_empty() => top,
            _ => {
                return Err(ControlError::Unexpected {
                    request: "Stat",
                    got: "Entries without the path's own",
                }
                .into());
            }
        };
        let children: Vec<Entry> = entries.collect();
        if let Some(bad) = children.iter().find(|e| check_entry_name(&e.name).is_err()) {
            return Err(GuestFileError::BadEntryName {
                dir: shown(path),
                name: shown(&bad.name),
            }
            .into());
        }
        Ok((top, children))
    }
}

/// `path` as the bytes of a guest path.
pub(super) fn guest_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}
