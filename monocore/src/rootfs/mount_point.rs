//! [`make_mount_point`]: a mount point inside a root that holds hostile
//! content, made on the host before the root is shared with a guest.

use std::path::Path;

use super::inroot::{InRootPath, Root};
use crate::error::RootfsError;

/// What a mount point is made as when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountPoint {
    /// A directory (for a directory bind or a file system).
    Dir,
    /// An empty file (for a file bind).
    File,
}

/// Makes sure `target` (a path inside `root`, `/`-rooted or not) exists,
/// for something to be mounted there: if it does not resolve, its missing
/// parents are made as directories and it as `kind`. Every step is
/// resolved inside `root` (`openat2` with `RESOLVE_IN_ROOT`): a symlink or
/// `..` in the tree leads no higher than `root`, and nothing is created
/// through a symlink. What already exists is left as it is, whatever it
/// is. `target` naming the root itself needs nothing.
///
/// ```
/// use monocore::rootfs::{MountPoint, make_mount_point};
/// let root = tempfile::tempdir()?;
/// std::os::unix::fs::symlink("/", root.path().join("up"))?;
/// make_mount_point(root.path(), "/up/var/run/secrets".as_ref(), MountPoint::Dir)?;
/// make_mount_point(root.path(), "/etc/hosts".as_ref(), MountPoint::File)?;
/// // The symlink to `/` led to the root's own top.
/// assert!(root.path().join("var/run/secrets").is_dir());
/// assert!(root.path().join("etc/hosts").is_file());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_mount_point(root: &Path, target: &Path, kind: MountPoint) -> Result<(), RootfsError> {
    let failed = |source| RootfsError::MountPoint {
        root: root.to_path_buf(),
        target: target.to_path_buf(),
        source,
    };
    let Some(path) = InRootPath::clean(target.as_os_str().as_encoded_bytes()) else {
        return Ok(());
    };
    Root::open(root)
        .and_then(|root| root.mount_point(&path, kind == MountPoint::Dir))
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::symlink};

    use super::*;

    #[test]
    fn mount_points_are_made_inside_the_root_and_existing_entries_kept() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), "kept").unwrap();
        symlink("/", root.join("top")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        for (target, kind) in [
            ("/top/a/b/dir", MountPoint::Dir),
            ("up/made-file", MountPoint::File),
            ("/etc/hosts", MountPoint::File),
            ("/etc-link/resolv.conf", MountPoint::File),
            ("/", MountPoint::Dir),
        ] {
            make_mount_point(&root, target.as_ref(), kind).unwrap();
        }
        assert!(root.join("a/b/dir").is_dir());
        assert!(root.join("made-file").is_file());
        assert_eq!(fs::read_to_string(root.join("etc/hosts")).unwrap(), "kept");
        assert!(root.join("etc/resolv.conf").is_file());
        // Nothing beside the root.
        let beside: Vec<_> = fs::read_dir(base.path()).unwrap().collect();
        assert_eq!(beside.len(), 1);
    }

    #[test]
    fn a_dangling_symlink_is_left_alone_and_a_file_in_the_way_is_an_error() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        fs::create_dir_all(&root).unwrap();
        symlink("/missing/target", root.join("dangling")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        make_mount_point(&root, "/dangling".as_ref(), MountPoint::File).unwrap();
        assert!(!root.join("missing").exists());
        let err = make_mount_point(&root, "/file/below".as_ref(), MountPoint::Dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot make the mount point /file/below inside {}",
                root.display()
            )
        );
    }
}
