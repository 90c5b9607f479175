//! The one tree copier: a template (the busybox tree, an image's unpacked
//! root) into a VM's private root.
//!
//! Each regular file is cloned with `FICLONE` (a reflink: no data copied,
//! on btrfs, XFS and others that share extents) and otherwise copied in the
//! kernel (`copy_file_range`). Directories, symlinks (copied as links,
//! never followed) and FIFOs are recreated; hardlinks stay hardlinks; modes,
//! times and (when root) ownership are kept. Devices and sockets are
//! skipped (an unpacked image never holds them). Nothing is followed out of
//! the template: every entry is looked at with `lstat`, and every new file
//! is created with `O_EXCL | O_NOFOLLOW` in a directory this copy made.

use std::{
    collections::HashMap,
    fs::{self, File},
    io,
    os::{
        fd::AsFd,
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use rustix::fs::{AtFlags, Timespec, Timestamps};

use crate::error::{RootfsError, rootfs::io_at};

/// Copies the tree `from` into the existing empty directory `to` (which
/// takes `from`'s mode); see the module docs.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), RootfsError> {
    let privileged = rustix::process::geteuid().is_root();
    let mut links = HashMap::new();
    copy_dir(from, to, privileged, &mut links)?;
    let meta = fs::symlink_metadata(from).map_err(io_at(from))?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io_at(to))?;
    Ok(())
}

fn copy_dir(
    from: &Path,
    to: &Path,
    privileged: bool,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), RootfsError> {
    for entry in fs::read_dir(from).map_err(io_at(from))? {
        let entry = entry.map_err(io_at(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(io_at(&src))?;
        let kind = meta.file_type();
        if !kind.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &dst).map_err(io_at(&dst))?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), dst.clone());
        }
        if kind.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dst)
                .map_err(io_at(&dst))?;
            copy_dir(&src, &dst, privileged, links)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(io_at(&src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io_at(&dst))?;
        } else if kind.is_file() {
            copy_file(&src, &dst).map_err(io_at(&dst))?;
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&kind) {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &dst,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .map_err(|e| io_at(&dst)(e.into()))?;
        } else {
            // Devices and sockets are never in an unpacked image.
            continue;
        }
        set_metadata(&dst, &meta, privileged).map_err(io_at(&dst))?;
    }
    Ok(())
}

fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    let input = File::open(src)?;
    let output = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)?;
    if rustix::fs::ioctl_ficlone(output.as_fd(), input.as_fd()).is_ok() {
        return Ok(());
    }
    // std's copy uses copy_file_range (in the kernel) where it can.
    let mut input = input;
    let mut output = output;
    io::copy(&mut input, &mut output).map(drop)
}

fn set_metadata(path: &Path, meta: &fs::Metadata, privileged: bool) -> io::Result<()> {
    let flags = AtFlags::SYMLINK_NOFOLLOW;
    if privileged {
        rustix::fs::chownat(
            rustix::fs::CWD,
            path,
            Some(rustix::fs::Uid::from_raw(meta.uid())),
            Some(rustix::fs::Gid::from_raw(meta.gid())),
            flags,
        )?;
    }
    if !meta.file_type().is_symlink() {
        // After chown, which clears set-uid and set-gid bits.
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let at = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let times = Timestamps {
        last_access: at(meta.atime(), meta.atime_nsec()),
        last_modification: at(meta.mtime(), meta.mtime_nsec()),
    };
    rustix::fs::utimensat(rustix::fs::CWD, path, &times, flags)?;
    Ok(())
}
