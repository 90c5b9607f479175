//! The host side of a copy out of a guest: the destination and every entry
//! under it are made with `*at` calls in directories opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the destination,
//! so no symlink is ever followed under it: not one the guest sent (links
//! are made as links, and a name the copy made a link can never be passed
//! through), and not one placed there meanwhile. Files and links are made
//! under a temporary name and renamed over their own, so an entry already
//! there is replaced, never written through. Modes come from the guest:
//! only the permission bits are kept (never set-user-ID, set-group-ID or
//! sticky), and directories get theirs once their contents are in.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::error::{GuestFileError, MonocoreError, MonocoreResult};

/// The permission bits a copied entry keeps on the host.
const HOST_MODE: u32 = 0o777;

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// A destination on the host, and what has been made under it.
pub(super) struct HostDest {
    path: PathBuf,
    /// The directory the destination is made in (as the caller named it).
    parent: OwnedFd,
    /// The destination's name in `parent`.
    name: OsString,
    /// The destination, once it is a directory.
    root: Option<OwnedFd>,
    /// The directories made, with their modes, to set at the end.
    made_dirs: Vec<(Vec<OsString>, u32)>,
}

/// A fresh name for an entry being made.
fn temp_name() -> OsString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".monocore-{}-{n}.tmp", std::process::id()).into()
}

/// Makes a new entry under a fresh temporary name in `dir` with `create`
/// (another name if that one is taken), then renames it over `name`.
fn replace_with(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mut create: impl FnMut(&OsStr) -> MonocoreResult<()>,
    host: impl Fn(io::Error) -> MonocoreError,
) -> MonocoreResult<()> {
    let mut attempts = 0;
    let temp = loop {
        let temp = temp_name();
        match create(&temp) {
            Ok(()) => break temp,
            Err(MonocoreError::GuestFile(GuestFileError::Host { source, .. }))
                if source.kind() == io::ErrorKind::AlreadyExists && attempts < 16 =>
            {
                attempts += 1;
            }
            Err(e) => {
                let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
                return Err(e);
            }
        }
    };
    rustix::fs::renameat(dir, &temp, dir, name).map_err(|e| {
        let _ = rustix::fs::unlinkat(dir, &temp, AtFlags::empty());
        host(e.into())
    })
}

impl HostDest {
    /// The destination `path` (its parent must exist).
    pub(super) fn new(path: &Path) -> MonocoreResult<Self> {
        let name = path
            .file_name()
            .filter(|_| !path.ends_with(".."))
            .ok_or_else(|| GuestFileError::NoFileName {
                path: path.to_path_buf(),
            })?
            .to_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let parent = rustix::fs::open(
            parent,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| GuestFileError::Host {
            path: parent.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            parent,
            name,
            root: None,
            made_dirs: Vec::new(),
        })
    }

    /// The host path of the entry at `rel` (components under the
    /// destination), for errors.
    pub(super) fn host_path(&self, rel: &[OsString]) -> PathBuf {
        rel.iter().fold(self.path.clone(), |p, c| p.join(c))
    }

    fn error(&self, rel: &[OsString]) -> impl Fn(io::Error) -> MonocoreError + use<> {
        let path = self.host_path(rel);
        move |source| {
            GuestFileError::Host {
                path: path.clone(),
                source,
            }
            .into()
        }
    }

    /// The directory `rel` is in, opened with no symlink followed under
    /// the destination, and `rel`'s last name; `f` of both.
    fn at<T>(
        &self,
        rel: &[OsString],
        f: impl FnOnce(BorrowedFd<'_>, &OsStr) -> MonocoreResult<T>,
    ) -> MonocoreResult<T> {
        let Some((name, dirs)) = rel.split_last() else {
            return f(self.parent.as_fd(), &self.name);
        };
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| self.error(rel)(io::Error::from(io::ErrorKind::NotADirectory)))?;
        let inside: PathBuf = dirs.iter().collect();
        let inside = if inside.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            inside
        };
        let dir = rustix::fs::openat2(
            root,
            &inside,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            BENEATH,
        )
        .map_err(|e| self.error(rel)(e.into()))?;
        f(dir.as_fd(), name)
    }

    /// Makes the directory `rel` (an existing directory, not a symlink,
    /// is kept as it is); its `mode` is set by [`finish`](Self::finish).
    pub(super) fn make_dir(&mut self, rel: &[OsString], mode: u32) -> MonocoreResult<()> {
        let error = self.error(rel);
        let made = self.at(rel, |dir, name| {
            match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => Ok(true),
                Err(rustix::io::Errno::EXIST) => {
                    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| error(e.into()))?;
                    if rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Directory
                    {
                        Ok(false)
                    } else {
                        Err(error(io::ErrorKind::AlreadyExists.into()))
                    }
                }
                Err(e) => Err(error(e.into())),
            }
        })?;
        if rel.is_empty() {
            let root = rustix::fs::openat(
                &self.parent,
                &self.name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| self.error(rel)(e.into()))?;
            self.root = Some(root);
        }
        if made {
            self.made_dirs.push((rel.to_vec(), mode & HOST_MODE));
        }
        Ok(())
    }

    /// Makes the file `rel` with `mode`, its bytes from `fill`: it is
    /// written under a temporary name, then renamed over `rel`.
    pub(super) fn write_file(
        &self,
        rel: &[OsString],
        mode: u32,
        fill: impl FnOnce(&mut File) -> MonocoreResult<u64>,
    ) -> MonocoreResult<u64> {
        let error = self.error(rel);
        self.at(rel, |dir, name| {
            let mut fill = Some(fill);
            let mut written = 0;
            replace_with(
                dir,
                name,
                |temp| {
                    let fd = rustix::fs::openat(
                        dir,
                        temp,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(|e| error(e.into()))?;
                    let mut file = File::from(fd);
                    if let Some(fill) = fill.take() {
                        written = fill(&mut file)?;
                    }
                    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & HOST_MODE))
                        .map_err(|e| error(e.into()))
                },
                &error,
            )?;
            Ok(written)
        })
    }

    /// Makes the symlink `rel` to `target` (never followed).
    pub(super) fn symlink(&self, rel: &[OsString], target: &OsStr) -> MonocoreResult<()> {
        let error = self.error(rel);
        self.at(rel, |dir, name| {
            replace_with(
                dir,
                name,
                |temp| rustix::fs::symlinkat(target, dir, temp).map_err(|e| error(e.into())),
                &error,
            )
        })
    }

    /// Sets the modes of the directories made, the deepest first.
    pub(super) fn finish(self) -> MonocoreResult<()> {
        for (rel, mode) in self.made_dirs.iter().rev() {
            let error = self.error(rel);
            let dir = match (rel.as_slice(), &self.root) {
                ([], Some(root)) => rustix::io::dup(root).map_err(|e| error(e.into()))?,
                (_, Some(root)) => rustix::fs::openat2(
                    root,
                    rel.iter().collect::<PathBuf>(),
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                    BENEATH,
                )
                .map_err(|e| error(e.into()))?,
                (_, None) => continue,
            };
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(*mode)).map_err(|e| error(e.into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt};

    use super::*;

    fn rel(parts: &[&str]) -> Vec<OsString> {
        parts.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_tree_is_made_with_links_as_links_and_modes_without_special_bits() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out");
        let mut dest = HostDest::new(&dst).unwrap();
        dest.make_dir(&[], 0o4755).unwrap();
        dest.make_dir(&rel(&["ro"]), 0o555).unwrap();
        let n = dest
            .write_file(&rel(&["ro", "f"]), 0o6755, |f| {
                std::io::Write::write_all(f, b"bytes").unwrap();
                Ok(5)
            })
            .unwrap();
        assert_eq!(n, 5);
        dest.symlink(&rel(&["up"]), OsStr::new("../../..")).unwrap();
        dest.finish().unwrap();
        assert_eq!(fs::read(dst.join("ro/f")).unwrap(), b"bytes");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dst.join("ro/f")), 0o755);
        assert_eq!(mode(&dst.join("ro")), 0o555);
        assert_eq!(mode(&dst), 0o755);
        assert_eq!(
            fs::read_link(dst.join("up")).unwrap(),
            Path::new("../../..")
        );
        fs::set_permissions(dst.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn nothing_is_made_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        fs::create_dir(&canary).unwrap();
        let dst = dir.path().join("out");
        let mut dest = HostDest::new(&dst).unwrap();
        dest.make_dir(&[], 0o755).unwrap();
        // A guest that names `x` a link to the canary, then a directory
        // `x` with a file in it, then a file under `x`.
        dest.symlink(&rel(&["x"]), canary.as_os_str()).unwrap();
        assert!(dest.make_dir(&rel(&["x"]), 0o755).is_err());
        let planted = dest.write_file(&rel(&["x", "planted"]), 0o644, |_| Ok(0));
        assert!(planted.is_err());
        let up = dest.symlink(&rel(&["x", "link"]), OsStr::new("/"));
        assert!(up.is_err());
        // A file over the link replaces the link, not its target.
        dest.write_file(&rel(&["x"]), 0o644, |_| Ok(0)).unwrap();
        dest.finish().unwrap();
        assert_eq!(fs::read_dir(&canary).unwrap().count(), 0);
        assert!(dst.join("x").is_file());
        // A destination that is a symlink to a directory is not entered.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&canary, &link).unwrap();
        let mut dest = HostDest::new(&link).unwrap();
        assert!(dest.make_dir(&[], 0o755).is_err());
        assert_eq!(fs::read_dir(&canary).unwrap().count(), 0);
        // No temporary names are left.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{names:?}"
        );
    }
}
