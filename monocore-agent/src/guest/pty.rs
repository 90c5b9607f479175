//! Pseudo-terminals for commands run with a terminal.

use std::{
    ffi::CStr,
    fs::File,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use super::sys;
use crate::control::WinSize;

/// A pseudo-terminal pair: the agent keeps the master, the command gets the
/// slave as its controlling terminal and stdin, stdout and stderr.
pub(crate) struct Pty {
    pub(crate) master: File,
    pub(crate) slave: OwnedFd,
}

/// Opens a pseudo-terminal of `size`.
pub(crate) fn open(size: WinSize) -> io::Result<Pty> {
    let master = sys::open_pty_master()?;
    let name = sys::pty_slave_name(&master)?;
    let slave = open_slave(&name)?;
    sys::set_winsize(master.as_raw_fd(), size)?;
    Ok(Pty {
        master: File::from(master),
        slave,
    })
}

fn open_slave(name: &CStr) -> io::Result<OwnedFd> {
    let fd = sys::open_noctty(name)?;
    // SAFETY: `fd` was just returned by open and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
