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

use super::sys::{self, StdSlot};

/// `/dev/console`'s device number (5, 1).
const CONSOLE_RDEV: u64 = (5 << 8) | 1;

/// Whether the standard stream `slot` is closed or is `/dev/console`.
fn is_init_console(slot: StdSlot) -> bool {
    // A duplicate, not a borrow: the fd number may be closed.
    match sys::dup_slot(slot)
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
    if is_init_console(StdSlot::Stdout) || is_init_console(StdSlot::Stderr) {
        let console = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_noctty())
            .open("/dev/hvc0")
            .map_err(errno)?;
        sys::raw_output(console.as_fd())?;
        for slot in [StdSlot::Stdout, StdSlot::Stderr] {
            if is_init_console(slot) {
                sys::dup_onto(console.as_fd(), slot)?;
            }
        }
    }
    if is_init_console(StdSlot::Stdin) {
        let null = File::open("/dev/null").map_err(errno)?;
        sys::dup_onto(null.as_fd(), StdSlot::Stdin)?;
    }
    Ok(())
}

fn libc_o_noctty() -> i32 {
    0o400 // O_NOCTTY on Linux
}
