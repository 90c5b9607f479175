//! The container's root file system: containerd passes the snapshot's
//! mounts (overlay, or a bind for the native snapshotter) in `create`; the
//! shim mounts them at the bundle's `rootfs` and unmounts them at `delete`.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use containerd_shim::protos::api::Mount;
use libc::c_ulong;

use crate::error::ShimError;

/// At most this many mounts are taken off one mount point: more than any
/// snapshot stacks, so a loop cannot spin.
const MAX_UNMOUNTS: usize = 16;

/// Mount options that are flags, not file-system data: (name, flags set,
/// flags cleared).
const FLAG_OPTIONS: [(&str, c_ulong, c_ulong); 14] = [
    ("ro", libc::MS_RDONLY, 0),
    ("rw", 0, libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID, 0),
    ("nodev", libc::MS_NODEV, 0),
    ("noexec", libc::MS_NOEXEC, 0),
    ("bind", libc::MS_BIND, 0),
    ("rbind", libc::MS_BIND | libc::MS_REC, 0),
    ("relatime", libc::MS_RELATIME, 0),
    ("noatime", libc::MS_NOATIME, 0),
    ("strictatime", libc::MS_STRICTATIME, 0),
    ("private", 0, 0),
    ("rprivate", 0, 0),
    ("slave", 0, 0),
    ("rslave", 0, 0),
];

/// Mounts one of containerd's mounts (an overlay or a bind) at `target`,
/// in this process (no helper process to fork and reap).
fn mount_one(m: &Mount, target: &Path) -> std::io::Result<()> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
    let mut flags: c_ulong = 0;
    let mut data = Vec::new();
    for option in &m.options {
        match FLAG_OPTIONS.iter().find(|(name, _, _)| name == option) {
            Some((_, set, clear)) => flags = (flags | set) & !clear,
            None => data.push(option.as_str()),
        }
    }
    let c = |s: &str| CString::new(s).map_err(|_| invalid("a NUL byte in a mount"));
    let source = c(&m.source)?;
    let kind = c(&m.type_)?;
    let data = c(&data.join(","))?;
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| invalid("a NUL byte in the target"))?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            kind.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // A read-only bind takes a second, remounting call.
    if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
        // SAFETY: as above; a NULL source and type are allowed for a remount.
        let ret = unsafe {
            libc::mount(
                std::ptr::null(),
                target.as_ptr(),
                std::ptr::null(),
                flags | libc::MS_REMOUNT,
                std::ptr::null(),
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

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
        mount_one(m, target).map_err(|source| ShimError::Mount {
            kind: m.type_.clone(),
            source_path: m.source.clone(),
            target: target.to_path_buf(),
            source,
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
