//! The file requests (version 4): writing a file, reading one, making a
//! directory or a symlink, and describing a path (with its directory's
//! entries), each in a place named by a [`FileTarget`].
//!
//! # Encoding
//!
//! After the frame's kind byte (strings and integers as in
//! [`crate::wire`]; a *flag* is one byte, 0 or 1):
//!
//! ```text
//! FileTarget  container: flag, then name: string if 1
//!             path: string                  absolute, in the place's root
//! WriteFile   FileTarget, mode: u32          then Data frames, the last empty
//! ReadFile    FileTarget, max: u64           answered by Data frames, then Done
//! Make        FileTarget, u8: 0 Dir, then mode: u32 | 1 Symlink, then target: string
//! Stat        FileTarget, list: flag         answered by Entries frames, then Done
//! Entries     list (≤ MAX_ENTRIES) of Entry
//! Entry       name: string, kind: u8 (0 file, 1 dir, 2 symlink, 3 other),
//!             mode: u32, size: u64, link: string
//! ```
//!
//! The decoder checks the form only; [`FileTarget::check`] and
//! [`check_link`] check the values, and both ends run them. An [`Entry`]'s
//! name comes from the guest: the host checks it with [`check_entry_name`]
//! before it uses it.

use std::fmt;

use super::check::{ExecProblem, MAX_PATH_LEN, check_name, check_path};
use crate::wire::{Reader, WireError, Writer};

/// The most entries one `Entries` frame carries (a directory's listing
/// takes as many frames as it needs).
pub const MAX_ENTRIES: usize = 4096;
/// The mode bits a written file or a made directory may have (permissions,
/// set-user-ID, set-group-ID, sticky).
pub const MAX_MODE: u32 = 0o7777;
/// The longest entry name (`NAME_MAX`).
pub const MAX_ENTRY_NAME_LEN: usize = 255;

/// Where a file request acts: a path in the VM's root, or in the root of a
/// running container (entered as a command's `Place::Join` is, so the path
/// is what the container's processes see).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTarget {
    /// The container, by name; `None`: the VM's root.
    pub container: Option<Vec<u8>>,
    /// The path, absolute, resolved inside the place's root.
    pub path: Vec<u8>,
}

/// What a `Make` request makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Make {
    /// A directory with this mode (an existing directory, not a symlink to
    /// one, is left as it is).
    Dir {
        /// Its mode (at most [`MAX_MODE`]).
        mode: u32,
    },
    /// A symlink to `target` (it replaces a file or symlink of the name).
    Symlink {
        /// What the link points at (any path; it is never followed here).
        target: Vec<u8>,
    },
}

/// What kind of file an [`Entry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (a device, a FIFO, a socket).
    Other,
}

/// A file as `Stat` describes it (never following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name in its directory; empty for the path `Stat` named.
    pub name: Vec<u8>,
    /// Its kind.
    pub kind: EntryKind,
    /// Its mode bits (at most [`MAX_MODE`]).
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// A symlink's target; empty for other kinds.
    pub link: Vec<u8>,
}

/// A value of a file request that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileError {
    /// Where it is.
    pub field: FileField,
    /// What is wrong.
    pub problem: ExecProblem,
}

/// Where in a file request a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileField {
    /// The container's name.
    Container,
    /// The path.
    Path,
    /// A symlink's target.
    Link,
}

impl fmt::Display for FileField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Container => "container",
            Self::Path => "path",
            Self::Link => "link target",
        })
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

impl std::error::Error for FileError {}

impl FileTarget {
    /// Checks the values: a container name as [`check_name`], a path as
    /// [`check_path`].
    pub fn check(&self) -> Result<(), FileError> {
        if let Some(name) = &self.container {
            check_name(name).map_err(|problem| FileError {
                field: FileField::Container,
                problem,
            })?;
        }
        check_path(&self.path).map_err(|problem| FileError {
            field: FileField::Path,
            problem,
        })
    }
}

/// Checks a symlink's target: not empty, at most [`MAX_PATH_LEN`] bytes,
/// no NUL (it may be relative, absolute or climb with `..`: it is data).
pub fn check_link(target: &[u8]) -> Result<(), FileError> {
    let problem = if target.is_empty() {
        ExecProblem::Empty
    } else if target.len() > MAX_PATH_LEN {
        ExecProblem::TooLong {
            len: target.len(),
            max: MAX_PATH_LEN,
        }
    } else if target.contains(&0) {
        ExecProblem::Nul
    } else {
        return Ok(());
    };
    Err(FileError {
        field: FileField::Link,
        problem,
    })
}

/// Checks an entry's name from a directory listing: one path component
/// (not empty, not `.` or `..`, no `/`, no NUL, at most
/// [`MAX_ENTRY_NAME_LEN`] bytes).
///
/// ```
/// use monocore_agent::control::check_entry_name;
/// assert!(check_entry_name(b"notes.txt").is_ok());
/// assert!(check_entry_name(b"..").is_err());
/// assert!(check_entry_name(b"a/b").is_err());
/// ```
pub fn check_entry_name(name: &[u8]) -> Result<(), ExecProblem> {
    if name == b"." || name == b".." {
        return Err(ExecProblem::DotDot);
    }
    if name.len() > MAX_ENTRY_NAME_LEN {
        return Err(ExecProblem::TooLong {
            len: name.len(),
            max: MAX_ENTRY_NAME_LEN,
        });
    }
    check_name(name)
}

pub(crate) fn write_target(w: &mut Writer, t: &FileTarget) -> Result<(), WireError> {
    match &t.container {
        None => w.bool(false),
        Some(name) => {
            w.bool(true);
            w.string("file.container", name)?;
        }
    }
    w.string("file.path", &t.path)
}

pub(crate) fn read_target(r: &mut Reader<'_>) -> Result<FileTarget, WireError> {
    Ok(FileTarget {
        container: if r.bool("file.container")? {
            Some(r.string("file.container")?)
        } else {
            None
        },
        path: r.string("file.path")?,
    })
}

const MAKE_DIR: u8 = 0;
const MAKE_SYMLINK: u8 = 1;

pub(crate) fn write_make(w: &mut Writer, make: &Make) -> Result<(), WireError> {
    match make {
        Make::Dir { mode } => {
            w.u8(MAKE_DIR);
            w.u32(*mode);
        }
        Make::Symlink { target } => {
            w.u8(MAKE_SYMLINK);
            w.string("make.target", target)?;
        }
    }
    Ok(())
}

pub(crate) fn read_make(r: &mut Reader<'_>) -> Result<Make, WireError> {
    match r.u8("make")? {
        MAKE_DIR => Ok(Make::Dir {
            mode: r.u32("make.mode")?,
        }),
        MAKE_SYMLINK => Ok(Make::Symlink {
            target: r.string("make.target")?,
        }),
        tag => Err(WireError::BadTag { field: "make", tag }),
    }
}

fn kind_tag(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Dir => 1,
        EntryKind::Symlink => 2,
        EntryKind::Other => 3,
    }
}

pub(crate) fn write_entries(w: &mut Writer, entries: &[Entry]) -> Result<(), WireError> {
    w.count_max("entries", entries.len(), MAX_ENTRIES)?;
    for e in entries {
        w.string("entries.name", &e.name)?;
        w.u8(kind_tag(e.kind));
        w.u32(e.mode);
        w.u64(e.size);
        w.string("entries.link", &e.link)?;
    }
    Ok(())
}

/// The fewest bytes an encoded entry takes: two empty strings, a kind,
/// a mode and a size.
const MIN_ENTRY_LEN: usize = 4 + 1 + 4 + 8 + 4;

pub(crate) fn read_entries(r: &mut Reader<'_>) -> Result<Vec<Entry>, WireError> {
    r.list_max("entries", MIN_ENTRY_LEN, MAX_ENTRIES, |r| {
        Ok(Entry {
            name: r.string("entries.name")?,
            kind: match r.u8("entries.kind")? {
                0 => EntryKind::File,
                1 => EntryKind::Dir,
                2 => EntryKind::Symlink,
                3 => EntryKind::Other,
                tag => {
                    return Err(WireError::BadTag {
                        field: "entries.kind",
                        tag,
                    });
                }
            },
            mode: r.u32("entries.mode")?,
            size: r.u64("entries.size")?,
            link: r.string("entries.link")?,
        })
    })
}

/// How many bytes `entry` takes in an `Entries` frame.
pub fn encoded_len(entry: &Entry) -> usize {
    MIN_ENTRY_LEN + entry.name.len() + entry.link.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_links_are_checked_by_field() {
        let target = |container: Option<&[u8]>, path: &[u8]| FileTarget {
            container: container.map(<[u8]>::to_vec),
            path: path.to_vec(),
        };
        assert_eq!(target(Some(b"web"), b"/etc/hosts").check(), Ok(()));
        assert_eq!(target(None, b"/").check(), Ok(()));
        let err = target(Some(b"a/b"), b"/x").check().unwrap_err();
        assert_eq!(err.field, FileField::Container);
        let err = target(None, b"etc/hosts").check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "path is not an absolute path (it must start with `/`)"
        );
        assert_eq!(check_link(b"../../.."), Ok(()));
        assert_eq!(check_link(b"").unwrap_err().problem, ExecProblem::Empty);
        assert_eq!(check_link(b"a\0").unwrap_err().problem, ExecProblem::Nul);
    }

    #[test]
    fn entry_names_are_one_component() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(check_entry_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_entry_name(&[b'x'; 256]).is_err());
        assert!(check_entry_name(&[b'x'; 255]).is_ok());
        assert!(check_entry_name(b"...").is_ok());
    }
}
