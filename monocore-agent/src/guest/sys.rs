//! The few Linux system calls the agent needs that `std` does not wrap,
//! each behind a safe function that takes C strings and returns the errno.

use std::{
    ffi::{CStr, c_char, c_int, c_long, c_uint, c_ulong, c_void},
    os::fd::{AsRawFd, BorrowedFd},
};

pub(crate) const MS_NOSUID: c_ulong = 2;
pub(crate) const MS_NODEV: c_ulong = 4;
pub(crate) const MS_NOEXEC: c_ulong = 8;
pub(crate) const MS_REC: c_ulong = 1 << 14;
pub(crate) const MS_PRIVATE: c_ulong = 1 << 18;
pub(crate) const MS_RELATIME: c_ulong = 1 << 21;
const MNT_DETACH: c_int = 2;
const CLONE_NEWNS: c_int = 0x0002_0000;

#[cfg(target_arch = "x86_64")]
const SYS_PIVOT_ROOT: c_long = 155;
#[cfg(target_arch = "aarch64")]
const SYS_PIVOT_ROOT: c_long = 41;

/// glibc's `struct termios` on Linux.
#[repr(C)]
struct Termios {
    iflag: c_uint,
    oflag: c_uint,
    cflag: c_uint,
    lflag: c_uint,
    line: u8,
    cc: [u8; 32],
    ispeed: c_uint,
    ospeed: c_uint,
}

/// `c_oflag`'s output-processing bit.
const OPOST: c_uint = 1;

#[repr(C)]
struct Rlimit64 {
    cur: u64,
    max: u64,
}

unsafe extern "C" {
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn umount2(target: *const c_char, flags: c_int) -> c_int;
    fn unshare(flags: c_int) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn setrlimit64(resource: c_int, limit: *const Rlimit64) -> c_int;
    fn tcgetattr(fd: c_int, termios: *mut Termios) -> c_int;
    fn tcsetattr(fd: c_int, action: c_int, termios: *const Termios) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
}

/// The errno of the last failed call, as a positive number.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(status: c_long) -> Result<(), i32> {
    if status < 0 { Err(errno()) } else { Ok(()) }
}

fn ptr(s: Option<&CStr>) -> *const c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

/// `mount(2)`.
pub(crate) fn mount_fs(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    // SAFETY: every pointer is NULL or a valid NUL-terminated string that
    // outlives the call; the kernel copies what it needs.
    let status = unsafe {
        mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast::<c_void>(),
        )
    };
    check(c_long::from(status))
}

/// `umount2(target, MNT_DETACH)`.
pub(crate) fn detach(target: &CStr) -> Result<(), i32> {
    // SAFETY: `target` is a valid NUL-terminated string alive for the call.
    check(c_long::from(unsafe {
        umount2(target.as_ptr(), MNT_DETACH)
    }))
}

/// `unshare(CLONE_NEWNS)`: a mount namespace of our own.
pub(crate) fn unshare_mounts() -> Result<(), i32> {
    // SAFETY: no pointers; affects only this process.
    check(c_long::from(unsafe { unshare(CLONE_NEWNS) }))
}

/// `pivot_root(new_root, put_old)`.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
    // SAFETY: pivot_root takes two valid NUL-terminated path strings, which
    // outlive the call.
    check(unsafe { syscall(SYS_PIVOT_ROOT, new_root.as_ptr(), put_old.as_ptr()) })
}

/// `setrlimit(resource, {soft, hard})`.
pub(crate) fn set_rlimit(resource: u32, soft: u64, hard: u64) -> Result<(), i32> {
    let resource = c_int::try_from(resource).map_err(|_| 22)?;
    let limit = Rlimit64 {
        cur: soft,
        max: hard,
    };
    // SAFETY: `limit` is a valid rlimit structure alive for the call.
    check(c_long::from(unsafe { setrlimit64(resource, &limit) }))
}

/// Turns output processing off on the terminal `fd` (no `\n` to `\r\n`).
pub(crate) fn raw_output(fd: BorrowedFd<'_>) -> Result<(), i32> {
    let mut termios = Termios {
        iflag: 0,
        oflag: 0,
        cflag: 0,
        lflag: 0,
        line: 0,
        cc: [0; 32],
        ispeed: 0,
        ospeed: 0,
    };
    // SAFETY: `termios` is a valid, writable `struct termios` for the call.
    check(c_long::from(unsafe {
        tcgetattr(fd.as_raw_fd(), &mut termios)
    }))?;
    termios.oflag &= !OPOST;
    const TCSANOW: c_int = 0;
    // SAFETY: `termios` is a valid `struct termios` read during the call.
    check(c_long::from(unsafe {
        tcsetattr(fd.as_raw_fd(), TCSANOW, &termios)
    }))
}

/// `dup2(old, new)`: `new` becomes a copy of `old`.
pub(crate) fn dup_onto(old: c_int, new: c_int) -> Result<(), i32> {
    // SAFETY: dup2 takes two integers; it closes `new` first if open, which
    // is what the caller asks for (0, 1 or 2).
    check(c_long::from(unsafe { dup2(old, new) }))
}
