//! Safe preparation of a (possibly hostile) root filesystem: the mount-point
//! directories for virtio-fs shares and a monocore-owned block in
//! `/etc/fstab`.
//!
//! The guest owns the rootfs, so any entry in it may be a symlink to a host
//! path. Nothing here ever follows a symlink out of the root:
//!
//! - With `openat2` (Linux 5.6+), paths are resolved with `RESOLVE_IN_ROOT`:
//!   a symlink is followed the way the guest will see it, clamped inside the
//!   root (an absolute target or `..` cannot leave it).
//! - Without `openat2` (`ENOSYS`), every component is opened with
//!   `O_NOFOLLOW | O_DIRECTORY`, so any symlink on the way is refused with a
//!   typed [`MonocoreError::Rootfs`] error.
//!
//! `/etc/fstab` is replaced atomically: a new file with an unpredictable name
//! is created in `etc` with `O_EXCL` (relative to the `etc` directory fd),
//! written, `fsync`ed and `renameat`ed over `fstab`. A symlinked `fstab` is
//! replaced by the regular file, never written through.

use std::{
    io::{Read, Write},
    os::fd::{AsFd, OwnedFd},
    path::Path,
};

use rustix::{
    fs::{FileType, Mode, OFlags, ResolveFlags},
    io::Errno,
};

use crate::{MonocoreError, MonocoreResult};

/// First line of the block monocore owns in `/etc/fstab`.
pub(crate) const BEGIN_MARKER: &str =
    "# BEGIN monocore virtio-fs mounts (managed by monocore, replaced on every run)";
/// Last line of that block.
pub(crate) const END_MARKER: &str = "# END monocore virtio-fs mounts";
/// Prefix of the virtio-fs tags monocore gives mapped directories.
pub(crate) const TAG_PREFIX: &str = "monocore_";
/// The largest `/etc/fstab` monocore will read (a hostile rootfs could hold a
/// huge one).
const MAX_FSTAB_LEN: u64 = 1 << 20;

/// How paths inside the root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// `openat2` with `RESOLVE_IN_ROOT`: symlinks are clamped inside the root.
    InRoot,
    /// Component by component with `O_NOFOLLOW`: symlinks are refused.
    NoSymlinks,
}

/// The virtio-fs tag of the `index`th mapped directory.
pub(crate) fn tag(index: usize) -> String {
    format!("{TAG_PREFIX}{index}")
}

/// One virtio-fs mount for the fstab block: its tag and normalized guest
/// mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) tag: String,
    pub(crate) guest_path: String,
}

/// Prepares the root at `root`: creates every mount point and rewrites the
/// monocore block of `/etc/fstab`. `mode` `None` picks `openat2` when the
/// kernel has it.
pub(crate) fn prepare_rootfs(
    root: &Path,
    mounts: &[Mount],
    mode: Option<Resolve>,
) -> MonocoreResult<()> {
    let root = Root::open(root, mode)?;
    for mount in mounts {
        root.mkdir_all(&components(&mount.guest_path))?;
    }
    root.write_fstab(mounts)
}

fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn rootfs_error(path: &[&str], reason: impl std::fmt::Display) -> MonocoreError {
    MonocoreError::Rootfs {
        path: path.join("/"),
        reason: reason.to_string(),
    }
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

struct Root {
    fd: OwnedFd,
    mode: Resolve,
}

impl Root {
    fn open(path: &Path, mode: Option<Resolve>) -> MonocoreResult<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        let mode = match mode {
            Some(mode) => mode,
            None => match rustix::fs::openat2(
                &fd,
                ".",
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            ) {
                Ok(_) => Resolve::InRoot,
                // No openat2 (pre-5.6 kernel, or filtered by seccomp).
                Err(Errno::NOSYS | Errno::PERM) => Resolve::NoSymlinks,
                Err(e) => return Err(io(e).into()),
            },
        };
        Ok(Self { fd, mode })
    }

    /// Opens the file or directory at `path` (components, relative to the
    /// root) with `flags`, never leaving the root.
    fn open_at(&self, path: &[&str], flags: OFlags) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC;
        match self.mode {
            Resolve::InRoot => {
                let joined = if path.is_empty() {
                    ".".to_owned()
                } else {
                    path.join("/")
                };
                // A concurrent rename inside the root makes openat2 answer
                // EAGAIN; retry a few times.
                let mut attempts = 0;
                loop {
                    match rustix::fs::openat2(
                        &self.fd,
                        joined.as_str(),
                        flags,
                        Mode::empty(),
                        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                    ) {
                        Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
                        other => return other,
                    }
                }
            }
            Resolve::NoSymlinks => {
                let mut current = rustix::fs::openat(
                    &self.fd,
                    ".",
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let Some((last, parents)) = path.split_last() else {
                    return Ok(current);
                };
                for component in parents {
                    current = rustix::fs::openat(
                        &current,
                        *component,
                        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                }
                rustix::fs::openat(&current, *last, flags | OFlags::NOFOLLOW, Mode::empty())
            }
        }
    }

    fn open_dir(&self, path: &[&str]) -> Result<OwnedFd, Errno> {
        self.open_at(path, OFlags::DIRECTORY | OFlags::RDONLY)
    }

    /// `mkdir -p` inside the root.
    fn mkdir_all(&self, path: &[&str]) -> MonocoreResult<OwnedFd> {
        let mut parent = self.open_dir(&[]).map_err(|e| rootfs_error(&[], io(e)))?;
        for (index, component) in path.iter().enumerate() {
            let prefix = path.get(..=index).unwrap_or(path);
            parent = match self.open_dir(prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&parent, *component, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(rootfs_error(prefix, io(e))),
                    }
                    self.open_dir(prefix).map_err(|e| describe(prefix, e))?
                }
                Err(e) => return Err(describe(prefix, e)),
            };
        }
        Ok(parent)
    }

    /// The current `/etc/fstab`, or empty if there is none.
    fn read_fstab(&self) -> MonocoreResult<String> {
        let path = ["etc", "fstab"];
        // O_NONBLOCK: a FIFO planted as fstab must not block us.
        let fd = match self.open_at(&path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(String::new()),
            Err(e) => return Err(describe(&path, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(rootfs_error(&path, "not a regular file"));
        }
        let mut text = String::new();
        let read = std::fs::File::from(fd)
            .take(MAX_FSTAB_LEN.saturating_add(1))
            .read_to_string(&mut text);
        match read {
            Ok(n) if (n as u64) > MAX_FSTAB_LEN => Err(rootfs_error(
                &path,
                format_args!("larger than {MAX_FSTAB_LEN} bytes"),
            )),
            Ok(_) => Ok(text),
            Err(e) => Err(rootfs_error(&path, e)),
        }
    }

    fn write_fstab(&self, mounts: &[Mount]) -> MonocoreResult<()> {
        let etc = self.mkdir_all(&["etc"])?;
        let existing = self.read_fstab()?;
        let new = replace_block(&existing, mounts);
        if new == existing {
            return Ok(());
        }
        let temp = temp_name();
        let fd = rustix::fs::openat(
            &etc,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| rootfs_error(&["etc", temp.as_str()], io(e)))?;
        let result = write_and_rename(fd, &etc, &temp, new.as_bytes());
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&etc, temp.as_str(), rustix::fs::AtFlags::empty());
        }
        result
    }
}

fn write_and_rename(fd: OwnedFd, etc: &OwnedFd, temp: &str, bytes: &[u8]) -> MonocoreResult<()> {
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .map_err(|e| rootfs_error(&["etc", temp], e))?;
    file.sync_all()
        .map_err(|e| rootfs_error(&["etc", temp], e))?;
    rustix::fs::renameat(etc, temp, etc, "fstab")
        .map_err(|e| rootfs_error(&["etc", "fstab"], io(e)))?;
    // Persist the rename; best effort (some filesystems refuse dir fsync).
    let _ = rustix::fs::fsync(etc.as_fd());
    Ok(())
}

/// Explains an open failure inside the root.
fn describe(path: &[&str], e: Errno) -> MonocoreError {
    match e {
        Errno::LOOP | Errno::NOTDIR => rootfs_error(
            path,
            "a symlink or non-directory is in the way; monocore never follows symlinks out of \
             the root (and without openat2 it follows none)",
        ),
        Errno::NOENT => rootfs_error(
            path,
            "a symlink on the way does not resolve inside the root",
        ),
        Errno::XDEV => rootfs_error(path, "resolves outside the root"),
        other => rootfs_error(path, io(other)),
    }
}

fn temp_name() -> String {
    format!(".fstab.monocore-{}", crate::util::unique_suffix())
}

/// Escapes a path for an fstab field (space, tab, newline and backslash as
/// octal, as `getmntent` reads them).
fn fstab_escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// The monocore block for `mounts` (empty when there are none).
pub(crate) fn block(mounts: &[Mount]) -> String {
    if mounts.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    out.push_str(BEGIN_MARKER);
    out.push('\n');
    for mount in mounts {
        out.push_str(&format!(
            "{} {} virtiofs defaults 0 0\n",
            fstab_escape(&mount.tag),
            fstab_escape(&mount.guest_path)
        ));
    }
    out.push_str(END_MARKER);
    out.push('\n');
    out
}

/// `existing` with every monocore block removed and the block for `mounts`
/// appended. Lines outside the markers are kept as they are. An unterminated
/// block (a `BEGIN` without `END`) is removed up to the first line that is
/// not a monocore entry.
pub(crate) fn replace_block(existing: &str, mounts: &[Mount]) -> String {
    let mut kept = String::with_capacity(existing.len());
    let mut lines = existing.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_end() == BEGIN_MARKER {
            while let Some(inner) = lines.peek() {
                let inner = inner.trim_end();
                if inner == END_MARKER {
                    lines.next();
                    break;
                }
                if inner.starts_with(TAG_PREFIX) || inner == BEGIN_MARKER {
                    lines.next();
                } else {
                    break;
                }
            }
            continue;
        }
        if line.trim_end() == END_MARKER {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept.push_str(&block(mounts));
    kept
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, fs, os::unix::fs::symlink};

    use super::*;

    /// `true` when `name` could be a temp file this module left behind.
    fn is_temp_name(name: &OsStr) -> bool {
        name.to_string_lossy().starts_with(".fstab.monocore-")
    }

    fn mounts(paths: &[&str]) -> Vec<Mount> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| Mount {
                tag: tag(i),
                guest_path: (*p).to_owned(),
            })
            .collect()
    }

    const MODES: [Resolve; 2] = [Resolve::InRoot, Resolve::NoSymlinks];

    #[test]
    fn block_is_replaced_and_user_lines_kept() {
        let existing = "proc /proc proc defaults 0 0\n";
        let once = replace_block(existing, &mounts(&["/data", "/a b"]));
        assert_eq!(
            once,
            format!(
                "proc /proc proc defaults 0 0\n{BEGIN_MARKER}\nmonocore_0 /data virtiofs defaults 0 0\nmonocore_1 /a\\040b virtiofs defaults 0 0\n{END_MARKER}\n"
            )
        );
        let with_user_after = format!("{once}tmpfs /tmp tmpfs defaults 0 0\n");
        let twice = replace_block(&with_user_after, &mounts(&["/other"]));
        assert_eq!(
            twice,
            format!(
                "proc /proc proc defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n{BEGIN_MARKER}\nmonocore_0 /other virtiofs defaults 0 0\n{END_MARKER}\n"
            )
        );
        assert_eq!(
            replace_block(&twice, &[]),
            "proc /proc proc defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n"
        );
    }

    #[test]
    fn unterminated_block_keeps_following_user_lines() {
        let existing = format!(
            "{BEGIN_MARKER}\nmonocore_0 /old virtiofs defaults 0 0\nuser /u ext4 defaults 0 0\n"
        );
        assert_eq!(replace_block(&existing, &[]), "user /u ext4 defaults 0 0\n");
    }

    #[test]
    fn writes_mount_points_and_fstab_and_runs_twice_without_stale_lines() {
        for mode in MODES {
            let root = tempfile::tempdir().unwrap();
            fs::create_dir(root.path().join("etc")).unwrap();
            fs::write(root.path().join("etc/fstab"), "user /u ext4 defaults 0 0\n").unwrap();

            prepare_rootfs(root.path(), &mounts(&["/data", "/deep/er/dir"]), Some(mode)).unwrap();
            assert!(root.path().join("data").is_dir());
            assert!(root.path().join("deep/er/dir").is_dir());
            let first = fs::read_to_string(root.path().join("etc/fstab")).unwrap();
            assert!(first.starts_with("user /u ext4 defaults 0 0\n"), "{first}");
            assert!(
                first.contains("monocore_1 /deep/er/dir virtiofs"),
                "{first}"
            );

            prepare_rootfs(root.path(), &mounts(&["/other"]), Some(mode)).unwrap();
            let second = fs::read_to_string(root.path().join("etc/fstab")).unwrap();
            assert_eq!(
                second,
                format!(
                    "user /u ext4 defaults 0 0\n{BEGIN_MARKER}\nmonocore_0 /other virtiofs defaults 0 0\n{END_MARKER}\n"
                ),
                "{mode:?}"
            );
            // No temp file left behind.
            let leftovers: Vec<_> = fs::read_dir(root.path().join("etc"))
                .unwrap()
                .filter(|e| is_temp_name(&e.as_ref().unwrap().file_name()))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    #[test]
    fn creates_etc_when_missing() {
        let root = tempfile::tempdir().unwrap();
        prepare_rootfs(root.path(), &mounts(&["/data"]), None).unwrap();
        let text = fs::read_to_string(root.path().join("etc/fstab")).unwrap();
        assert!(text.contains("monocore_0 /data virtiofs"));
    }

    /// A host directory and file the attacks point at; each test checks it
    /// is untouched.
    struct HostTarget {
        dir: tempfile::TempDir,
    }

    impl HostTarget {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("fstab"), "HOST FILE\n").unwrap();
            Self { dir }
        }

        fn assert_untouched(&self) {
            let names: Vec<_> = fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                names,
                vec![std::ffi::OsString::from("fstab")],
                "host dir changed"
            );
            assert_eq!(
                fs::read_to_string(self.dir.path().join("fstab")).unwrap(),
                "HOST FILE\n"
            );
        }
    }

    #[test]
    fn etc_symlink_to_a_host_dir_never_writes_outside_the_root() {
        for mode in MODES {
            let host = HostTarget::new();
            let root = tempfile::tempdir().unwrap();
            symlink(host.dir.path(), root.path().join("etc")).unwrap();
            let result = prepare_rootfs(root.path(), &mounts(&["/data"]), Some(mode));
            assert!(
                matches!(result, Err(MonocoreError::Rootfs { ref path, .. }) if path == "etc"),
                "{mode:?}: {result:?}"
            );
            host.assert_untouched();
        }
    }

    #[test]
    fn etc_symlink_resolves_inside_the_root_with_openat2() {
        // An absolute symlink is read the way the guest reads it: inside the
        // root. The write lands in <root>/<host path>, never on the host.
        let host = HostTarget::new();
        let root = tempfile::tempdir().unwrap();
        let host_dir = host.dir.path().to_str().unwrap().trim_start_matches('/');
        fs::create_dir_all(root.path().join(host_dir)).unwrap();
        symlink(host.dir.path(), root.path().join("etc")).unwrap();
        prepare_rootfs(root.path(), &mounts(&["/data"]), Some(Resolve::InRoot)).unwrap();
        assert!(
            fs::read_to_string(root.path().join(host_dir).join("fstab"))
                .unwrap()
                .contains("monocore_0 /data")
        );
        host.assert_untouched();
    }

    #[test]
    fn fstab_symlink_to_a_host_file_is_never_written_through() {
        for mode in MODES {
            let host = HostTarget::new();
            let root = tempfile::tempdir().unwrap();
            fs::create_dir(root.path().join("etc")).unwrap();
            symlink(host.dir.path().join("fstab"), root.path().join("etc/fstab")).unwrap();
            let result = prepare_rootfs(root.path(), &mounts(&["/data"]), Some(mode));
            match mode {
                // Read inside the root (no such file there), then the
                // symlink itself is replaced by a regular file.
                Resolve::InRoot => {
                    result.unwrap();
                    let meta = fs::symlink_metadata(root.path().join("etc/fstab")).unwrap();
                    assert!(meta.file_type().is_file());
                    assert!(
                        fs::read_to_string(root.path().join("etc/fstab"))
                            .unwrap()
                            .contains("monocore_0 /data")
                    );
                }
                Resolve::NoSymlinks => {
                    assert!(
                        matches!(result, Err(MonocoreError::Rootfs { ref path, .. }) if path == "etc/fstab"),
                        "{result:?}"
                    );
                }
            }
            host.assert_untouched();
        }
    }

    #[test]
    fn symlinked_mount_point_parent_never_creates_dirs_outside_the_root() {
        for mode in MODES {
            let host = HostTarget::new();
            let root = tempfile::tempdir().unwrap();
            symlink(host.dir.path(), root.path().join("mnt")).unwrap();
            let result = prepare_rootfs(root.path(), &mounts(&["/mnt/data"]), Some(mode));
            assert!(
                matches!(result, Err(MonocoreError::Rootfs { ref path, .. }) if path == "mnt"),
                "{mode:?}: {result:?}"
            );
            host.assert_untouched();
            // Also via `..` in a relative link.
            let root = tempfile::tempdir().unwrap();
            symlink("../../../../../../../../..", root.path().join("up")).unwrap();
            let escape = format!("/up{}/x", host.dir.path().display());
            let result = prepare_rootfs(root.path(), &mounts(&[escape.as_str()]), Some(mode));
            host.assert_untouched();
            if mode == Resolve::NoSymlinks {
                assert!(result.is_err());
            } else if result.is_ok() {
                // Clamped inside the root: the dirs were created there.
                assert!(
                    root.path()
                        .join(host.dir.path().strip_prefix("/").unwrap())
                        .join("x")
                        .is_dir()
                );
            }
        }
    }

    #[test]
    fn a_fifo_as_fstab_is_refused_without_blocking() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let fifo = root.path().join("etc/fstab");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let result = prepare_rootfs(root.path(), &mounts(&["/data"]), None);
        assert!(
            matches!(result, Err(MonocoreError::Rootfs { .. })),
            "{result:?}"
        );
    }
}
