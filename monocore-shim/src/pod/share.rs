//! A pod's share: the host directory its VM boots with as the guest's
//! root, and the host-side mounts the shim places in it while the VM runs
//! (each container's root file system and bind mounts).
//!
//! The guest can write anything in the share (it is its root file system,
//! over virtio-fs), so every host-side step in it treats it as hostile:
//!
//! - paths are resolved from a descriptor of the share with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
//!   | RESOLVE_NO_XDEV)`: a symlink the guest planted fails the step
//!   instead of leading it elsewhere on the host;
//! - a mount point is created with `mkdirat`/`openat(O_CREAT | O_EXCL |
//!   O_NOFOLLOW)` under such a descriptor, and the mount is attached to
//!   that very descriptor (`open_tree` + `move_mount` with empty paths), so
//!   nothing is looked up by path between the check and the mount;
//! - a read-only bind is made read-only (`mount_setattr`) before it is
//!   attached, so the guest never sees it writable.
//!
//! Everything the share holds is under `containers/<slot>/`: one slot per
//! container, so a container's mounts can be taken off on their own.

use std::{
    ffi::{OsStr, OsString},
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use rustix::{
    fs::{CWD, Mode, OFlags, ResolveFlags},
    io::Errno,
    mount::{MoveMountFlags, OpenTreeFlags, UnmountFlags},
};

/// The share's directory of container slots, as the guest sees it.
pub const CONTAINERS: &str = "containers";

/// At most this many mounts are taken off one entry: more than any
/// snapshot stacks, so a loop cannot spin.
const MAX_UNMOUNTS: usize = 16;

/// Why a step in a pod's share failed.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The share's directory could not be made or opened.
    #[error("cannot create the pod's share {}", dir.display())]
    Create {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A slot or entry name that is not one plain path component.
    #[error("`{}` is not a plain file name (empty, `.`, `..` or with `/`)", name.display())]
    Name {
        /// The name.
        name: PathBuf,
    },
    /// A step on an entry of the share failed (a symlink the guest planted
    /// is `ELOOP` here).
    #[error("cannot {step} `{entry}` in the pod's share")]
    Entry {
        /// What was being done.
        step: &'static str,
        /// The entry, relative to the share.
        entry: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host file or directory to bind could not be opened.
    #[error("cannot open {} to bind it into the pod", source_path.display())]
    Source {
        /// The host path.
        source_path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A pod's share directory, open.
#[derive(Debug)]
pub struct PodShare {
    dir: PathBuf,
    fd: OwnedFd,
}

/// The flags every lookup in the share resolves with.
fn confined() -> ResolveFlags {
    ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV
}

/// `name` when it is one plain path component.
fn plain(name: &OsStr) -> Result<&OsStr, ShareError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(ShareError::Name { name: name.into() });
    }
    Ok(name)
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// `/proc/self/fd/N` for `fd`: the path `umount2` takes for a mount that a
/// descriptor holds.
fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl PodShare {
    /// Makes `dir` (which must not exist; its parent must) private to this
    /// user, with an empty `containers/`.
    pub fn create(dir: &Path) -> Result<Self, ShareError> {
        let fail = |source| ShareError::Create {
            dir: dir.to_path_buf(),
            source,
        };
        rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)).map_err(|e| fail(io(e)))?;
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(io(e)))?;
        rustix::fs::mkdirat(&fd, CONTAINERS, Mode::from_raw_mode(0o755))
            .map_err(|e| fail(io(e)))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    /// The share's host directory (the VM's root).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Opens `entry` (relative to the share) with `flags`, confined.
    fn open(&self, entry: &Path, flags: OFlags) -> Result<OwnedFd, ShareError> {
        rustix::fs::openat2(
            &self.fd,
            entry,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            confined(),
        )
        .map_err(|e| ShareError::Entry {
            step: "open",
            entry: entry.display().to_string(),
            source: io(e),
        })
    }

    /// The slot directory `containers/<slot>`, made if it is missing.
    fn slot(&self, slot: &OsStr) -> Result<(OwnedFd, PathBuf), ShareError> {
        let rel = Path::new(CONTAINERS).join(plain(slot)?);
        let containers = self.open(Path::new(CONTAINERS), OFlags::PATH | OFlags::DIRECTORY)?;
        match rustix::fs::mkdirat(&containers, slot, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(ShareError::Entry {
                    step: "create",
                    entry: rel.display().to_string(),
                    source: io(e),
                });
            }
        }
        let fd = self.open(&rel, OFlags::PATH | OFlags::DIRECTORY)?;
        Ok((fd, rel))
    }

    /// Binds host `source` (a file or a directory, with the mounts below
    /// it) at `containers/<slot>/<name>`, read-only if asked, and returns
    /// its path in the guest (`/containers/<slot>/<name>`). `name` must be
    /// new in the slot.
    pub fn attach(
        &self,
        slot: &OsStr,
        name: &OsStr,
        source: &Path,
        readonly: bool,
    ) -> Result<PathBuf, ShareError> {
        let name = plain(name)?;
        let source_error = |e: Errno| ShareError::Source {
            source_path: source.to_path_buf(),
            source: io(e),
        };
        let tree = rustix::mount::open_tree(
            CWD,
            source,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(source_error)?;
        let is_dir = rustix::fs::fstat(&tree)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
            .map_err(source_error)?;
        let (slot_fd, slot_rel) = self.slot(slot)?;
        let rel = slot_rel.join(name);
        let entry_error = |step, e: Errno| ShareError::Entry {
            step,
            entry: rel.display().to_string(),
            source: io(e),
        };
        if is_dir {
            rustix::fs::mkdirat(&slot_fd, name, Mode::from_raw_mode(0o755))
                .map_err(|e| entry_error("create", e))?;
        } else {
            rustix::fs::openat(
                &slot_fd,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map_err(|e| entry_error("create", e))?;
        }
        let target = rustix::fs::openat2(
            &slot_fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            confined(),
        )
        .map_err(|e| entry_error("open", e))?;
        if readonly {
            set_readonly(tree.as_fd()).map_err(|e| entry_error("make read-only", e))?;
        }
        rustix::mount::move_mount(
            &tree,
            "",
            &target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| entry_error("mount", e))?;
        Ok(Path::new("/").join(rel))
    }

    /// Takes every mount off the entries of `containers/<slot>` and removes
    /// the slot. A slot that does not exist is not an error.
    pub fn detach(&self, slot: &OsStr) -> Result<(), ShareError> {
        let rel = Path::new(CONTAINERS).join(plain(slot)?);
        let dir = match self.open(&rel, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => Some(fd),
            Err(ShareError::Entry { source, .. })
                if source.raw_os_error() == Some(Errno::NOENT.raw_os_error()) =>
            {
                return Ok(());
            }
            // Not a directory (the guest put a symlink or a file there):
            // nothing of ours is mounted in it; it is only removed.
            Err(ShareError::Entry { source, .. })
                if [Errno::NOTDIR, Errno::LOOP]
                    .iter()
                    .any(|e| source.raw_os_error() == Some(e.raw_os_error())) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(dir) = dir {
            self.unmount_slot(&dir, &rel)?;
        }
        // Nothing is mounted in it any more: what is left is the guest's
        // or the mount points, removed without following any symlink.
        let containers = self.open(Path::new(CONTAINERS), OFlags::RDONLY | OFlags::DIRECTORY)?;
        remove_tree_at(&containers, slot).map_err(|e| ShareError::Entry {
            step: "remove",
            entry: rel.display().to_string(),
            source: io(e),
        })
    }

    /// Takes every mount off the entries of slot directory `dir` (`rel`).
    fn unmount_slot(&self, dir: &OwnedFd, rel: &Path) -> Result<(), ShareError> {
        for name in entries(dir).map_err(|e| ShareError::Entry {
            step: "list",
            entry: rel.display().to_string(),
            source: io(e),
        })? {
            let entry = rel.join(&name);
            unmount_entry(dir, &name).map_err(|e| ShareError::Entry {
                step: "unmount",
                entry: entry.display().to_string(),
                source: io(e),
            })?;
        }
        Ok(())
    }

    /// Opens the share at `dir` that a shim made before (to clean up after
    /// one that died).
    pub fn open_existing(dir: &Path) -> Result<Self, ShareError> {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ShareError::Create {
            dir: dir.to_path_buf(),
            source: io(e),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    /// Takes every mount off every slot, and removes the share.
    pub fn remove(&self) -> Result<(), ShareError> {
        let containers = self.open(Path::new(CONTAINERS), OFlags::RDONLY | OFlags::DIRECTORY);
        if let Ok(containers) = containers {
            let slots = entries(&containers).map_err(|e| ShareError::Entry {
                step: "list",
                entry: CONTAINERS.to_owned(),
                source: io(e),
            })?;
            for slot in slots {
                self.detach(&slot)?;
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ShareError::Entry {
                step: "remove",
                entry: ".".to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// The names in directory `dir` (without `.` and `..`).
fn entries(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut names = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

/// Takes every mount off entry `name` of `dir`: each lookup is confined
/// and lands on the top mount, which `umount2` on its descriptor's
/// `/proc/self/fd` path takes off.
fn unmount_entry(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    for _ in 0..MAX_UNMOUNTS {
        let fd = match rustix::fs::openat2(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            confined() & !ResolveFlags::NO_XDEV,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !is_mount_root(&fd)? {
            return Ok(());
        }
        match rustix::mount::unmount(fd_path(fd.as_fd()), UnmountFlags::DETACH) {
            // Taken off meanwhile (by a concurrent clean-up).
            Ok(()) | Err(Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `fd` is the root of a mount.
fn is_mount_root(fd: &OwnedFd) -> Result<bool, Errno> {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    let st = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)?;
    let known = st.stx_attributes_mask;
    let attributes = st.stx_attributes;
    // Every kernel with open_tree (5.2) reports the attribute (5.8); one
    // that does not cannot have made these mounts.
    Ok(known.contains(StatxAttributes::MOUNT_ROOT)
        && attributes.contains(StatxAttributes::MOUNT_ROOT))
}

/// Removes `name` in `dir` and everything below it, never following a
/// symlink and never crossing into a mount.
fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    // Another process may be removing the same tree (containerd cleans up
    // after a dead pod shim once per task, concurrently): what is gone is
    // done.
    let sub = match rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        confined(),
    ) {
        Ok(sub) => sub,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries(&sub)? {
        remove_tree_at(&sub, &entry)?;
    }
    drop(sub);
    match rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY)`:
/// makes a detached mount tree read-only (rustix has no wrapper).
fn set_readonly(tree: BorrowedFd<'_>) -> Result<(), Errno> {
    /// `struct mount_attr` (linux/mount.h), version 0.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `tree` is an open descriptor for the call's duration, the
    // path is a NUL-terminated empty string, and `attr` is a valid
    // `struct mount_attr` whose size is passed with it; the kernel only
    // reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

#[cfg(test)]
mod tests;
