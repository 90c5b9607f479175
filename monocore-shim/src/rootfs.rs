//! The container's root file system: containerd passes the snapshot's
//! mounts (overlay, or a bind for the native snapshotter) in `create`; the
//! shim mounts them at the bundle's `rootfs` and unmounts them at `delete`.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use containerd_shim::protos::api::Mount;

use crate::error::ShimError;

/// At most this many mounts are taken off one mount point: more than any
/// snapshot stacks, so a loop cannot spin.
const MAX_UNMOUNTS: usize = 16;

/// A root file system this shim mounted; unmounted by [`unmount`](Self::unmount)
/// or, failing that, when dropped.
#[derive(Debug)]
pub struct MountedRoot {
    target: Option<PathBuf>,
}

/// Mounts `mounts` at `target` in order (creating it if needed). Nothing is
/// mounted, and `None` returned, when there are none (the bundle's
/// `rootfs` is used as it is).
pub fn mount(mounts: &[Mount], target: &Path) -> Result<Option<MountedRoot>, ShimError> {
    if mounts.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(target).map_err(|source| ShimError::RootDir {
        target: target.to_path_buf(),
        source,
    })?;
    // If a mount below fails, dropping `root` undoes those made before it.
    let root = MountedRoot {
        target: Some(target.to_path_buf()),
    };
    for m in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()).filter(|t| !t.is_empty()),
            Some(m.source.as_str()).filter(|s| !s.is_empty()),
            &m.options,
            target,
        )
        .map_err(|source| ShimError::Mount {
            kind: m.type_.clone(),
            source_path: m.source.clone(),
            target: target.to_path_buf(),
            source: Box::new(source),
        })?;
    }
    Ok(Some(root))
}

impl MountedRoot {
    /// Unmounts everything at the mount point.
    pub fn unmount(mut self) -> Result<(), ShimError> {
        match self.target.take() {
            Some(target) => unmount_all(&target),
            None => Ok(()),
        }
    }
}

impl Drop for MountedRoot {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            let _ = unmount_all(&target);
        }
    }
}

/// Takes every mount off `target` (lazily, so a busy one goes as soon as it
/// is free). Nothing mounted there is not an error.
pub fn unmount_all(target: &Path) -> Result<(), ShimError> {
    let fail = |source| ShimError::Unmount {
        target: target.to_path_buf(),
        source,
    };
    let path = CString::new(target.as_os_str().as_bytes())
        .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    for _ in 0..MAX_UNMOUNTS {
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let ret = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        if ret == 0 {
            continue;
        }
        let error = std::io::Error::last_os_error();
        return match error.raw_os_error() {
            // Not a mount point (any more), or no such directory: done.
            Some(libc::EINVAL | libc::ENOENT) => Ok(()),
            _ => Err(fail(error)),
        };
    }
    Ok(())
}
