//! Copying a file or a whole tree in and out of a guest, over one file
//! session: symlinks are copied as symlinks and never followed, on either
//! side; a copy out is bounded in bytes and entries (a guest's tree is
//! hostile input) and made under its host destination by [`HostDest`].

use std::{
    ffi::OsString,
    fs::{self, File},
    os::unix::{
        ffi::{OsStrExt, OsStringExt},
        fs::{MetadataExt, OpenOptionsExt},
    },
    path::Path,
};

use monocore_agent::control::{Entry, EntryKind, MAX_MODE, Make};

use super::{
    CopySummary,
    host::HostDest,
    session::{Session, shown},
};
use crate::error::{GuestFileError, MonocoreResult};

/// `dir/name` as a guest path.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn host_error(path: &Path) -> impl Fn(std::io::Error) -> GuestFileError + '_ {
    move |source| GuestFileError::Host {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the host file, symlink or directory tree `src` to the guest
/// path `dst`. Directories are made with their mode and the owner's
/// `rwx` (so what is copied into them can be written); an existing
/// directory is merged into.
pub(super) fn copy_in(s: &mut Session, src: &Path, dst: &[u8]) -> MonocoreResult<CopySummary> {
    let mut summary = CopySummary::default();
    let mut stack = vec![(src.to_path_buf(), dst.to_vec())];
    while let Some((host, guest)) = stack.pop() {
        let meta = fs::symlink_metadata(&host).map_err(host_error(&host))?;
        let kind = meta.file_type();
        let mode = meta.mode() & MAX_MODE;
        if kind.is_symlink() {
            let target = fs::read_link(&host).map_err(host_error(&host))?;
            let target = target.into_os_string().into_vec();
            s.make(&guest, Make::Symlink { target })?;
            summary.symlinks += 1;
        } else if kind.is_dir() {
            s.make(&guest, Make::Dir { mode: mode | 0o700 })?;
            summary.dirs += 1;
            let mut names: Vec<OsString> = fs::read_dir(&host)
                .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
                .map_err(host_error(&host))?;
            names.sort();
            for name in names.into_iter().rev() {
                let child = join(&guest, name.as_bytes());
                stack.push((host.join(name), child));
            }
        } else if kind.is_file() {
            let mut file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&host)
                .map_err(host_error(&host))?;
            summary.bytes += s.write(&guest, mode, &mut file, &host)?;
            summary.files += 1;
        } else {
            return Err(GuestFileError::Unsupported {
                path: host.display().to_string(),
            }
            .into());
        }
    }
    Ok(summary)
}

/// A copy out in progress: its session, its destination and what it may
/// still take.
struct CopyOut<'s> {
    s: &'s mut Session,
    dest: HostDest,
    src: Vec<u8>,
    max_bytes: u64,
    bytes_left: u64,
    max_entries: u64,
    entries_left: u64,
    summary: CopySummary,
}

/// An entry to copy: its guest path, its path under the destination, what
/// it is, and, for a directory already listed, its entries.
type Pending = (Vec<u8>, Vec<OsString>, Entry, Option<Vec<Entry>>);

impl CopyOut<'_> {
    /// Counts `n` more entries against the limit.
    fn take_entries(&mut self, n: usize) -> MonocoreResult<()> {
        let n = n as u64;
        if n > self.entries_left {
            return Err(GuestFileError::TooManyEntries {
                path: shown(&self.src),
                max: self.max_entries,
            }
            .into());
        }
        self.entries_left -= n;
        Ok(())
    }

    fn run(mut self) -> MonocoreResult<CopySummary> {
        let (top, children) = self.s.stat(&self.src, true, self.max_entries)?;
        self.take_entries(children.len())?;
        let mut stack: Vec<Pending> = vec![(self.src.clone(), Vec::new(), top, Some(children))];
        while let Some((guest, rel, entry, listed)) = stack.pop() {
            match (entry.kind, listed) {
                (EntryKind::Dir, None) => {
                    // Listed now, and described again: it may have changed.
                    let (again, children) = self.s.stat(&guest, true, self.entries_left)?;
                    self.take_entries(children.len())?;
                    stack.push((guest, rel, again, Some(children)));
                }
                (EntryKind::Dir, Some(children)) => {
                    self.dest.make_dir(&rel, entry.mode)?;
                    self.summary.dirs += 1;
                    for child in children.into_iter().rev() {
                        let path = join(&guest, &child.name);
                        let mut under = rel.clone();
                        under.push(OsString::from_vec(child.name.clone()));
                        stack.push((path, under, child, None));
                    }
                }
                (EntryKind::File, _) => {
                    let host = self.dest.host_path(&rel);
                    let (s, left, max) = (&mut *self.s, self.bytes_left, self.max_bytes);
                    let n = self.dest.write_file(&rel, entry.mode, |file| {
                        s.read(&guest, left, max, file, &host)
                    })?;
                    self.bytes_left = self.bytes_left.saturating_sub(n);
                    self.summary.bytes += n;
                    self.summary.files += 1;
                }
                (EntryKind::Symlink, _) => {
                    let target = OsString::from_vec(entry.link);
                    self.dest.symlink(&rel, &target)?;
                    self.summary.symlinks += 1;
                }
                (EntryKind::Other, _) => {
                    return Err(GuestFileError::Unsupported {
                        path: shown(&guest),
                    }
                    .into());
                }
            }
        }
        self.dest.finish()?;
        Ok(self.summary)
    }
}

/// Copies the guest file, symlink or directory tree `src` to the host path
/// `dst` (its parent must exist; an existing directory is merged into, a
/// file or symlink replaced), at most `max_bytes` bytes and `max_entries`
/// entries in all.
pub(super) fn copy_out(
    s: &mut Session,
    src: &[u8],
    dst: &Path,
    max_bytes: u64,
    max_entries: u64,
) -> MonocoreResult<CopySummary> {
    CopyOut {
        s,
        dest: HostDest::new(dst)?,
        src: src.to_vec(),
        max_bytes,
        bytes_left: max_bytes,
        max_entries,
        entries_left: max_entries,
        summary: CopySummary::default(),
    }
    .run()
}
