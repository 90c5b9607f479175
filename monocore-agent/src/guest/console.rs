//! Standard I/O for the command when libkrun gives it no ports.
//!
//! libkrun's init hands the command its own `krun-stdin`/`-stdout`/
//! `-stderr` virtio ports when the VMM has them; when the console goes to a
//! file (`console_output`), there are none and the command would inherit
//! init's `/dev/console`, which is not the virtio console. Then the agent
//! connects stdout and stderr to the virtio console (`/dev/hvc0`), with
//! output processing off so bytes arrive unchanged (no `\r` added), and
//! stdin to `/dev/null`.

use std::{
    fs::{File, OpenOptions},
    os::{
        fd::AsFd,
        unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    },
};

use super::sys::{self, StdioFd};

/// `/dev/console`'s device number (5, 1).
const CONSOLE_RDEV: u64 = (5 << 8) | 1;

/// `O_NOCTTY` on Linux.
const O_NOCTTY: i32 = 0o400;

/// Whether `fd` is closed (or cannot be inspected) or is `/dev/console`.
///
/// `fd` is inspected through a duplicate owned here, which the same call
/// that finds a closed `fd` (`EBADF`) would have made: nothing borrows a
/// descriptor that may be closed.
fn is_init_console(fd: StdioFd) -> bool {
    match sys::dup_stdio(fd)
        .map(File::from)
        .and_then(|f| f.metadata())
    {
        Err(_) => true,
        Ok(meta) => meta.file_type().is_char_device() && meta.rdev() == CONSOLE_RDEV,
    }
}

/// Reconnects fds 0, 1 and 2 where they are init's console; see the module
/// docs. `Err` is the errno of the step that failed.
pub(crate) fn fix_stdio() -> Result<(), i32> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(5);
    if is_init_console(StdioFd::Out) || is_init_console(StdioFd::Err) {
        let console = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open("/dev/hvc0")
            .map_err(errno)?;
        sys::raw_output(console.as_fd())?;
        for fd in [StdioFd::Out, StdioFd::Err] {
            if is_init_console(fd) {
                sys::replace_stdio(console.as_fd(), fd)?;
            }
        }
    }
    if is_init_console(StdioFd::In) {
        let null = File::open("/dev/null").map_err(errno)?;
        sys::replace_stdio(null.as_fd(), StdioFd::In)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdio_fd_that_is_not_the_console_is_left_alone() {
        // The test's stderr is a pipe, a file or a terminal, never
        // /dev/console (5, 1) (a host's console is not a test's output).
        assert!(!is_init_console(StdioFd::Err));
    }
}
