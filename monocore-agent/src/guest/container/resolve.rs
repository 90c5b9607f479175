//! Mount points inside a container's root, which the container's own
//! processes (and whoever filled its image) can write: every path is
//! resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink or `..` in it
//! leads no higher than the root, and every missing entry is created with a
//! `*at` call in a directory resolved that way, never through a symlink.

use std::{
    ffi::CString,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::fs::MetadataExt,
    },
};

use monocore_agent::control::components;

use super::sys::{self, O_DIRECTORY, O_PATH};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;

/// What a mount point is created as when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A directory (for a directory or a new file system).
    Dir,
    /// An empty file (for a file bind).
    File,
}

fn c_path(parts: &[&[u8]]) -> Result<CString, i32> {
    if parts.is_empty() {
        return Ok(c".".to_owned());
    }
    CString::new(parts.join(&b'/')).map_err(|_| EINVAL)
}

fn open(root: BorrowedFd<'_>, parts: &[&[u8]], kind: Kind) -> Result<OwnedFd, i32> {
    let flags = match kind {
        Kind::Dir => O_PATH | O_DIRECTORY,
        Kind::File => O_PATH,
    };
    sys::open_in_root(root, &c_path(parts)?, flags)
}

/// Opens `parts` under `root`, creating the last of them as `kind` if it
/// is missing (its parent exists).
fn open_or_create(root: BorrowedFd<'_>, parts: &[&[u8]], kind: Kind) -> Result<OwnedFd, i32> {
    match open(root, parts, kind) {
        Err(ENOENT) => {}
        other => return other,
    }
    let Some((last, parent)) = parts.split_last() else {
        return Err(ENOENT);
    };
    let dir = open(root, parent, Kind::Dir)?;
    let name = CString::new(*last).map_err(|_| EINVAL)?;
    let made = match kind {
        Kind::Dir => sys::make_dir(dir.as_fd(), &name, 0o755),
        Kind::File => sys::make_file(dir.as_fd(), &name, 0o644),
    };
    // EEXIST: something is there after all (a dangling symlink, or an entry
    // made meanwhile): it is opened as it resolves, or not at all.
    match made {
        Ok(()) | Err(EEXIST) => open(root, parts, kind),
        Err(e) => Err(e),
    }
}

/// The mount point `target` (a path inside the container, `/`-rooted or
/// not) under `root`, created as `kind` where missing, its missing parents
/// as directories. It never resolves outside `root`, and never to `root`
/// itself (`EINVAL`: nothing is mounted over a container's root).
pub(crate) fn mount_point(root: BorrowedFd<'_>, target: &[u8], kind: Kind) -> Result<OwnedFd, i32> {
    let parts: Vec<&[u8]> = components(target).collect();
    if parts.is_empty() || parts.contains(&&b".."[..]) {
        return Err(EINVAL);
    }
    // Most mount points exist (an image's `/proc`, `/etc/hosts`): one
    // lookup. Each lookup costs the guest a round trip to the host's file
    // server, so the walk that creates what is missing comes only after.
    let point = match open(root, &parts, kind) {
        Err(ENOENT) => {
            for end in 1..parts.len() {
                let parent = parts.get(..end).ok_or(EINVAL)?;
                drop(open_or_create(root, parent, Kind::Dir)?);
            }
            open_or_create(root, &parts, kind)?
        }
        other => other?,
    };
    if same_file(root, point.as_fd())? {
        return Err(EINVAL);
    }
    Ok(point)
}

/// Whether `a` and `b` are the same file (device and inode).
pub(crate) fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<bool, i32> {
    let meta = |fd: BorrowedFd<'_>| sys::metadata(fd).map(|m| (m.dev(), m.ino()));
    Ok(meta(a)? == meta(b)?)
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::symlink, path::Path};

    use super::*;
    use crate::guest::container::sys::O_RDONLY;

    fn root_fd(dir: &Path) -> OwnedFd {
        let path = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        sys::open_path(&path, O_PATH | O_DIRECTORY | O_RDONLY).unwrap()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "monocore-agent-resolve-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root")).unwrap();
        dir
    }

    #[test]
    fn missing_mount_points_are_created_inside_the_root() {
        let dir = temp("create");
        let root = root_fd(&dir.join("root"));
        mount_point(root.as_fd(), b"/a/b/dir", Kind::Dir).unwrap();
        mount_point(root.as_fd(), b"/a/file", Kind::File).unwrap();
        assert!(dir.join("root/a/b/dir").is_dir());
        assert!(dir.join("root/a/file").is_file());
        // Existing ones are opened as they are.
        mount_point(root.as_fd(), b"//a/./file", Kind::File).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_to_the_top_or_above_it_stay_inside_the_root() {
        let dir = temp("escape");
        let root_path = dir.join("root");
        let root = root_fd(&root_path);
        symlink("/", root_path.join("to-top")).unwrap();
        symlink("../../..", root_path.join("up")).unwrap();
        symlink(&dir, root_path.join("absolute-outside")).unwrap();
        for (target, kind, lands) in [
            (&b"/to-top/planted"[..], Kind::File, "planted"),
            (b"/up/made/dir", Kind::Dir, "made/dir"),
            (b"/up/to-top/up/y", Kind::Dir, "y"),
        ] {
            mount_point(root.as_fd(), target, kind).unwrap();
            assert!(root_path.join(lands).exists(), "{lands}");
        }
        // An absolute link to the root's own host path means a path inside
        // the root, which is missing here: nothing is created, anywhere.
        assert_eq!(
            mount_point(root.as_fd(), b"/absolute-outside/root/x", Kind::File).unwrap_err(),
            ENOENT
        );
        assert!(!dir.join("root/x").exists());
        // Nothing appeared beside the root, or above it.
        let mut beside: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        beside.sort();
        assert_eq!(beside, ["root"]);
        assert!(!dir.parent().unwrap().join("planted").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_target_that_resolves_to_the_root_or_through_a_dangling_link_is_refused() {
        let dir = temp("root");
        let root_path = dir.join("root");
        let root = root_fd(&root_path);
        symlink("/", root_path.join("top")).unwrap();
        symlink("/missing/x", root_path.join("dangling")).unwrap();
        assert_eq!(
            mount_point(root.as_fd(), b"/top", Kind::Dir).unwrap_err(),
            EINVAL
        );
        assert_eq!(
            mount_point(root.as_fd(), b"/", Kind::Dir).unwrap_err(),
            EINVAL
        );
        assert_eq!(
            mount_point(root.as_fd(), b"/a/../b", Kind::Dir).unwrap_err(),
            EINVAL
        );
        // A dangling symlink is not followed to create its target.
        assert_eq!(
            mount_point(root.as_fd(), b"/dangling", Kind::File).unwrap_err(),
            ENOENT
        );
        assert!(!root_path.join("missing").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
