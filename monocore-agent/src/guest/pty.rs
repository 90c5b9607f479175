//! Pseudo-terminals for commands run with a terminal.

use std::{
    fs::File,
    io,
    os::fd::{AsFd, OwnedFd},
};

use monocore_agent::control::WinSize;

use super::sys;

/// A pseudo-terminal pair: the agent keeps the master, the command gets the
/// slave as its controlling terminal and stdin, stdout and stderr.
pub(crate) struct Pty {
    pub(crate) master: File,
    pub(crate) slave: OwnedFd,
}

/// Opens a pseudo-terminal of `size`.
pub(crate) fn open(size: WinSize) -> io::Result<Pty> {
    let master = sys::open_pty_master()?;
    let name = sys::pty_slave_name(master.as_fd())?;
    let slave = sys::open_noctty(&name)?;
    sys::set_winsize(master.as_fd(), size)?;
    Ok(Pty {
        master: File::from(master),
        slave,
    })
}
