//! Errors of moving files in and out of a running VM
//! ([`GuestFiles`](crate::vm::GuestFiles)): a request the agent would
//! refuse (validation, before anything is sent), a limit the guest went
//! past, the agent's own failure, and the host side of a copy.

use std::{io, path::PathBuf, time::Duration};

use crate::util::errno_description;

/// Where in a file request a value is, as named by
/// [`GuestFileError::Invalid`].
pub use monocore_agent::control::FileField as GuestFileField;

/// Why moving files in or out of a running VM failed. Paths in the guest
/// are escaped to printable ASCII (they may come from the guest).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFileError {
    /// A guest path, link target or container name that the agent would
    /// refuse; nothing was sent.
    #[error("guest file request: {field} {value:?} {problem}")]
    Invalid {
        /// Which value.
        field: GuestFileField,
        /// The value, escaped and cut to at most 256 characters.
        value: String,
        /// What is wrong.
        problem: super::GuestCommandProblem,
    },

    /// A mode with bits beyond the permissions, set-user-ID, set-group-ID
    /// and sticky bits; nothing was sent.
    #[error("mode {mode:#o} for {path:?} has bits beyond {max:#o}", max = monocore_agent::control::MAX_MODE)]
    InvalidMode {
        /// The guest path.
        path: String,
        /// The mode given.
        mode: u32,
    },

    /// The guest had more bytes to send than the limit: the read (or the
    /// copy) was cut off there, and nothing past the limit was kept.
    #[error("{path:?} in the guest holds more than {max} bytes, the most this read accepts")]
    TooLarge {
        /// The guest path.
        path: String,
        /// The limit, in bytes.
        max: u64,
    },

    /// A tree in the guest has more entries than the limit: the copy was
    /// stopped there.
    #[error("the tree at {path:?} in the guest has more than {max} entries, the most a copy takes")]
    TooManyEntries {
        /// The guest path of the tree (or of the directory being listed).
        path: String,
        /// The limit.
        max: u64,
    },

    /// The operation did not finish in time: the connection was closed.
    #[error("the guest did not finish with {path:?} within {timeout:?}")]
    TimedOut {
        /// The guest path being worked on.
        path: String,
        /// The time the whole operation had.
        timeout: Duration,
    },

    /// The guest agent could not do it (its step and errno).
    #[error("the guest cannot {what} {path:?}: {description}", what = step_verb(*.step), description = errno_description(*.errno))]
    Guest {
        /// The guest path.
        path: String,
        /// The agent's step that failed.
        step: super::GuestStep,
        /// Its errno.
        errno: i32,
    },

    /// The guest listed an entry whose name is not one path component
    /// (empty, `.`, `..`, a `/` or a NUL in it): it broke the protocol.
    #[error("the guest listed {name:?} in {dir:?}, which is not the name of one entry")]
    BadEntryName {
        /// The guest directory.
        dir: String,
        /// The name, escaped.
        name: String,
    },

    /// A file that is neither a regular file, a directory nor a symlink (a
    /// device, a FIFO, a socket): a copy does not take it.
    #[error("{path:?} is not a file, a directory or a symlink, and is not copied")]
    Unsupported {
        /// Its path (on the host for a copy in, in the guest for a copy
        /// out).
        path: String,
    },

    /// A host path of a copy names no file (it ends in `..` or is `/`).
    #[error("{} names no file to copy to or from", .path.display())]
    NoFileName {
        /// The host path.
        path: PathBuf,
    },

    /// Reading or writing the host side of a copy failed.
    #[error("{} on the host", .path.display())]
    Host {
        /// The host path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn step_verb(step: super::GuestStep) -> &'static str {
    use super::GuestStep;
    match step {
        GuestStep::Resolve => "find the directory of",
        GuestStep::Write => "write",
        GuestStep::Read => "read",
        GuestStep::Make => "make",
        GuestStep::Stat => "describe",
        GuestStep::Container => "enter the container for",
        _ => "work on",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GuestStep;

    #[test]
    fn messages_name_the_path_and_the_limit() {
        let err = GuestFileError::TooLarge {
            path: "/dev/zero".into(),
            max: 1024,
        };
        assert_eq!(
            err.to_string(),
            "\"/dev/zero\" in the guest holds more than 1024 bytes, the most this read accepts"
        );
        let err = GuestFileError::Guest {
            path: "/etc/x".into(),
            step: GuestStep::Resolve,
            errno: libc::ENOTDIR,
        };
        assert_eq!(
            err.to_string(),
            "the guest cannot find the directory of \"/etc/x\": Not a directory"
        );
        let err = GuestFileError::InvalidMode {
            path: "/x".into(),
            mode: 0o10_000,
        };
        assert_eq!(
            err.to_string(),
            "mode 0o10000 for \"/x\" has bits beyond 0o7777"
        );
    }
}
