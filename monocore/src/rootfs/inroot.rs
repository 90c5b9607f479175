//! File operations confined to a root directory that holds hostile content.
//!
//! Every path is resolved from the root's file descriptor with `openat2`
//! and `RESOLVE_IN_ROOT`: a symlink or `..` met on the way is resolved as if
//! the root were `/`, so nothing outside it can be reached, whatever an
//! earlier layer planted. The last component of a path is never followed:
//! it is created, replaced or removed with the `*at` calls on its parent's
//! descriptor, with `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`. There is no
//! fallback for kernels without `openat2` (Linux < 5.6): unpacking fails
//! there rather than resolving hostile paths by hand.

use std::{
    ffi::{OsStr, OsString},
    io,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// The resolution every lookup uses.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// How often a lookup is tried when the kernel says to retry.
const ATTEMPTS: u32 = 64;

/// `openat2` with `how`, tried again while the kernel refuses a `..` it
/// cannot prove safe because mounts or renames happen elsewhere on the
/// host meanwhile (`EAGAIN`, which asks for a retry).
fn open_in_root(
    dir: impl AsFd,
    path: &Path,
    flags: OFlags,
    mode: Mode,
    how: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match rustix::fs::openat2(&dir, path, flags, mode, how) {
            Err(rustix::io::Errno::AGAIN) if attempts < ATTEMPTS => {}
            other => return other,
        }
    }
}

/// A path inside the root, cleaned lexically like `path.Clean("/" + p)`:
/// `.` and empty components dropped, `..` removing the one before it (never
/// climbing above the root). `None` for the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct InRootPath {
    components: Vec<OsString>,
}

impl InRootPath {
    pub(crate) fn clean(raw: &[u8]) -> Option<Self> {
        let mut components: Vec<OsString> = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    components.pop();
                }
                name => components.push(OsStr::from_bytes(name).to_owned()),
            }
        }
        if components.is_empty() {
            None
        } else {
            Some(Self { components })
        }
    }

    /// The last component (a name without `/`).
    pub(crate) fn name(&self) -> &OsStr {
        self.components
            .last()
            .map_or(OsStr::new("."), |c| c.as_os_str())
    }

    /// The parent's components, relative to the root (`.` for the root).
    pub(crate) fn parent(&self) -> std::path::PathBuf {
        let count = self.components.len().saturating_sub(1);
        let parent: std::path::PathBuf = self.components.iter().take(count).collect();
        if parent.as_os_str().is_empty() {
            ".".into()
        } else {
            parent
        }
    }

    /// The whole path, relative to the root.
    pub(crate) fn relative(&self) -> std::path::PathBuf {
        self.components.iter().collect()
    }

    /// The path of `name` inside this one.
    pub(crate) fn join(&self, name: &OsStr) -> Self {
        let mut components = self.components.clone();
        components.push(name.to_owned());
        Self { components }
    }

    /// Whether `self` is `other` or lies inside it.
    pub(crate) fn starts_with(&self, other: &Self) -> bool {
        self.components.starts_with(&other.components)
    }
}

/// The root directory, open.
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    /// Opens the directory at `path` (relative to the root), resolved in
    /// the root.
    pub(crate) fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        Ok(open_in_root(
            &self.fd,
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        )?)
    }

    /// Opens `path` itself (not following it if it is a symlink) with
    /// `O_PATH`, resolved in the root.
    pub(crate) fn open_path(&self, path: &Path) -> io::Result<OwnedFd> {
        Ok(open_in_root(
            &self.fd,
            path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        )?)
    }

    /// Opens the parent directory of `path`, creating missing directories
    /// (mode 0755, like docker) on the way. A component that exists but is
    /// not a directory (after resolution in the root) is an error.
    pub(crate) fn parent_dir(&self, path: &InRootPath) -> io::Result<OwnedFd> {
        let parent = path.parent();
        match self.open_dir(&parent) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            other => return other,
        }
        let mut dir = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut so_far = std::path::PathBuf::new();
        for component in parent.components() {
            so_far.push(component);
            match self.open_dir(&so_far) {
                Ok(fd) => dir = fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // A dangling symlink here is replaced by nothing: mkdirat
                    // does not follow a last-component symlink (EEXIST).
                    rustix::fs::mkdirat(&dir, component.as_os_str(), Mode::from_raw_mode(0o755))?;
                    dir = self.open_dir(&so_far)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(dir)
    }
}

impl Root {
    /// Makes sure `path` exists, as a mount point: if it does not resolve
    /// (symlinks followed, inside the root), its missing parents are made
    /// as directories (mode 0755) and it as a directory (0755) or an empty
    /// file (0644), never through a symlink. Whatever already exists there
    /// is left as it is.
    pub(crate) fn mount_point(&self, path: &InRootPath, dir: bool) -> io::Result<()> {
        match open_in_root(
            &self.fd,
            &path.relative(),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        ) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let parent = self.parent_dir(path)?;
        let made = if dir {
            rustix::fs::mkdirat(&parent, path.name(), Mode::from_raw_mode(0o755))
        } else {
            rustix::fs::openat(
                &parent,
                path.name(),
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        };
        match made {
            // Something is there after all (a dangling symlink): left alone.
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// What is at `name` in `dir`, without following it.
pub(crate) fn stat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_dir(stat: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
}

/// Removes `name` from `dir`, a directory with everything in it; never
/// follows a symlink. Missing is not an error.
pub(crate) fn remove_all_at(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let Some(stat) = stat_at(dir, name)? else {
        return Ok(());
    };
    if !is_dir(&stat) {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let child = rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    // Unprivileged, a directory without write or search permission for
    // its owner (us) cannot be emptied: grant them first.
    let _ = rustix::fs::fchmod(&child, Mode::from_raw_mode(0o700));
    clear_dir(&child, |_| true)?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes every entry of `dir` for which `remove(name)` says so.
pub(crate) fn clear_dir(dir: &OwnedFd, mut remove: impl FnMut(&OsStr) -> bool) -> io::Result<()> {
    let names = list_dir(dir)?;
    for name in names {
        if remove(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in `dir`, without `.` and `..`.
pub(crate) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    let mut entries = rustix::fs::Dir::read_from(dir.as_fd())?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_lexically_and_never_climb_out() {
        let clean = |raw: &str| InRootPath::clean(raw.as_bytes()).map(|p| p.relative());
        assert_eq!(clean("a/b/../c"), Some("a/c".into()));
        assert_eq!(clean("../../etc/passwd"), Some("etc/passwd".into()));
        assert_eq!(clean("/abs//x/./y/"), Some("abs/x/y".into()));
        assert_eq!(clean("./"), None);
        assert_eq!(clean(".."), None);
        let p = InRootPath::clean(b"a/b/c").unwrap();
        assert_eq!((p.parent(), p.name()), ("a/b".into(), OsStr::new("c")));
        assert_eq!(InRootPath::clean(b"c").unwrap().parent(), Path::new("."));
        assert!(p.starts_with(&InRootPath::clean(b"a").unwrap()));
        assert!(
            !InRootPath::clean(b"ab")
                .unwrap()
                .starts_with(&InRootPath::clean(b"a").unwrap())
        );
    }

    #[test]
    fn lookups_stay_in_the_root_through_hostile_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root_dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root_dir.path().join("up")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        // `up/new/x`: `up` resolves to the root itself.
        let dir = root
            .parent_dir(&InRootPath::clean(b"up/new/x").unwrap())
            .unwrap();
        rustix::fs::mkdirat(&dir, "made", Mode::from_raw_mode(0o755)).unwrap();
        assert!(root_dir.path().join("new/made").is_dir());
        // `abs/x`: the absolute link resolves inside the root, where its
        // target does not exist; the dangling link is not replaced.
        assert!(
            root.parent_dir(&InRootPath::clean(b"abs/x").unwrap())
                .is_err()
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
