//! What an entry keeps besides its data: its owner (when the process is
//! root), its mode (made readable and writable by the owner otherwise) and
//! its modification time.

use std::{ffi::OsStr, io, os::fd::OwnedFd};

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps};

use super::{EntryError, Unpacker, tar::Header};

impl Unpacker {
    pub(super) fn file_mode(&self, mode: u32) -> u32 {
        if self.privileged { mode } else { mode | 0o600 }
    }

    pub(super) fn set_owner_mode(
        &self,
        fd: &OwnedFd,
        header: &Header,
        dir: bool,
    ) -> Result<(), EntryError> {
        if self.privileged {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(header.uid)),
                Some(rustix::fs::Gid::from_raw(header.gid)),
            )?;
        }
        let mode = match (self.privileged, dir) {
            (true, _) => header.mode,
            (false, true) => header.mode | 0o700,
            (false, false) => header.mode | 0o600,
        };
        // After chown, which clears set-uid and set-gid bits.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?;
        Ok(())
    }

    pub(super) fn set_owner_at(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        header: &Header,
    ) -> Result<(), EntryError> {
        if self.privileged {
            rustix::fs::chownat(
                parent,
                name,
                Some(rustix::fs::Uid::from_raw(header.uid)),
                Some(rustix::fs::Gid::from_raw(header.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }
}

pub(super) fn times(mtime: i64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

pub(super) fn set_time_at(parent: &OwnedFd, name: &OsStr, mtime: i64) -> io::Result<()> {
    Ok(rustix::fs::utimensat(
        parent,
        name,
        &times(mtime),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}
