//! The cache directory and its private subdirectories.

use std::{fs, io, os::unix::fs::PermissionsExt, path::Path, path::PathBuf};

use crate::error::{StateError, UnsafeDirReason};

/// monocore's cache directory: `$MONOCORE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/monocore`, else `$HOME/.cache/monocore`, else
/// `<tmp>/monocore-cache-<uid>`.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("MONOCORE_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("monocore");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("monocore");
    }
    let uid = rustix::process::getuid().as_raw();
    std::env::temp_dir().join(format!("monocore-cache-{uid}"))
}

/// The parent of running VMs' run directories: `vms` in the cache.
pub(crate) fn vms_dir() -> PathBuf {
    cache_dir().join("vms")
}

/// The parent of private root copies: `runs` in the cache.
pub(crate) fn runs_dir() -> PathBuf {
    cache_dir().join("runs")
}

/// The OCI image cache: `images` in the cache.
pub(crate) fn images_dir() -> PathBuf {
    cache_dir().join("images")
}

/// Where `scripts/build-compat-kernel.sh` installs the compat kernel:
/// `kernel/compat` in the cache.
pub(crate) fn compat_kernel_dir() -> PathBuf {
    cache_dir().join("kernel").join("compat")
}

/// Creates `dir` (mode 0700) if needed and checks that it is private: a real
/// directory (not a symlink), owned by this user, not writable by group or
/// others. Entries in such a directory cannot be created, renamed or
/// removed by another (non-root) user.
///
/// A directory of ours that is group- or world-writable is tightened (its
/// write bits for group and others are removed) rather than refused.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let unsafe_dir = |reason| StateError::UnsafeDir {
        path: dir.to_path_buf(),
        reason,
    };
    let io_error = |source: io::Error| StateError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_error(e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(io_error)?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(UnsafeDirReason::Symlink));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir(UnsafeDirReason::NotADirectory));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(unsafe_dir(UnsafeDirReason::Owner {
            owner: meta.uid(),
            me,
        }));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o022)).map_err(io_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn cache_dirs_are_created_private() {
        let base = tempfile::tempdir().unwrap();
        let cache = base.path().join("a/b/cache");
        ensure_private_dir(&cache).unwrap();
        let mode = fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        // Ours but group/world-writable: tightened, not refused.
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&cache).unwrap();
        let mode = fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn a_symlinked_cache_dir_is_refused() {
        // Another user pre-creating `/tmp/monocore-cache-<uid>` as a symlink
        // to a directory they control.
        let base = tempfile::tempdir().unwrap();
        let theirs = base.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        let cache = base.path().join("cache");
        symlink(&theirs, &cache).unwrap();
        let err = ensure_private_dir(&cache).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::UnsafeDir {
                    reason: UnsafeDirReason::Symlink,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("it is a symlink"), "{err}");
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    }

    #[test]
    fn a_cache_dir_owned_by_another_user_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let theirs = if rustix::process::geteuid().is_root() {
            // As root: a directory pre-created by `nobody`.
            let dir = base.path().join("cache");
            fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            dir
        } else {
            // As a user: `/` is owned by root, i.e. by someone else.
            PathBuf::from("/")
        };
        let err = ensure_private_dir(&theirs).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::UnsafeDir {
                    reason: UnsafeDirReason::Owner { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("owned by uid"), "{err}");
    }

    #[test]
    fn a_cache_path_that_is_a_file_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            ensure_private_dir(&file),
            Err(StateError::UnsafeDir {
                reason: UnsafeDirReason::NotADirectory,
                ..
            })
        ));
    }
}
