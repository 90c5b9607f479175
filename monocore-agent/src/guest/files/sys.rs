//! The system calls file requests need beyond the containers' (see
//! `container/sys.rs`), behind safe functions that take file descriptors
//! as `BorrowedFd`, names as C strings, and return the errno: creating a
//! file exclusively, renaming and unlinking in a directory, `statx` and
//! `readlinkat` without following, `getdents64`, and the calling thread's
//! own umask. They call the C library (glibc 2.30 or later has each).

use std::{
    ffi::{CStr, c_char, c_int, c_long, c_uint, c_void},
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_EXCL: c_int = 0o200;
const O_CLOEXEC: c_int = 0o2_000_000;
#[cfg(target_arch = "x86_64")]
pub(crate) const O_NOFOLLOW: c_int = 0o400_000;
#[cfg(target_arch = "aarch64")]
pub(crate) const O_NOFOLLOW: c_int = 0o100_000;
pub(crate) const O_NONBLOCK: c_int = 0o4000;
const F_SETFL: c_int = 4;
const AT_SYMLINK_NOFOLLOW: c_int = 0x100;
const AT_EMPTY_PATH: c_int = 0x1000;
const CLONE_FS: c_int = 0x0000_0200;
const STATX_TYPE: c_uint = 0x1;
const STATX_MODE: c_uint = 0x2;
const STATX_SIZE: c_uint = 0x200;

/// The file type bits of a mode, and the types file requests tell apart.
pub(crate) const S_IFMT: u32 = 0o170_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const S_IFDIR: u32 = 0o040_000;
pub(crate) const S_IFLNK: u32 = 0o120_000;

/// `struct statx`: the fields read here, then the rest (256 bytes in all,
/// the same on every architecture).
#[repr(C)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    spare0: u16,
    ino: u64,
    size: u64,
    rest: [u64; 26],
}

unsafe extern "C" {
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn renameat(olddir: c_int, old: *const c_char, newdir: c_int, new: *const c_char) -> c_int;
    fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, len: usize) -> isize;
    fn statx(
        dirfd: c_int,
        path: *const c_char,
        flags: c_int,
        mask: c_uint,
        buf: *mut Statx,
    ) -> c_int;
    fn getdents64(fd: c_int, buf: *mut c_void, len: usize) -> isize;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn umask(mask: c_uint) -> c_uint;
    fn unshare(flags: c_int) -> c_int;
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

fn check(status: c_long) -> Result<(), i32> {
    if status < 0 { Err(errno()) } else { Ok(()) }
}

/// Gives the calling thread a file system context of its own (root,
/// working directory, umask), a copy of the process's, and a umask of 0
/// in it: modes are then applied as given, and nothing changes for the
/// rest of the agent or the commands it starts.
pub(crate) fn own_umask(shared: bool) -> Result<(), i32> {
    if shared {
        // SAFETY: no pointers; affects only the calling thread.
        check(c_long::from(unsafe { unshare(CLONE_FS) }))?;
    }
    // SAFETY: no pointers; the calling thread's file system context is its
    // own (unshared above, or by the container join before).
    unsafe { umask(0) };
    Ok(())
}

/// Creates the new file `name` in `dir` for writing, with exactly `mode`
/// (the thread's umask is 0): `O_CREAT | O_EXCL | O_NOFOLLOW`, so an entry
/// already there, a symlink included, is `Err(EEXIST)` and never followed.
pub(crate) fn create_new(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<OwnedFd, i32> {
    let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    // SAFETY: `name` is a valid NUL-terminated string alive for the call;
    // the mode is the variadic argument O_CREAT reads.
    let fd = unsafe { openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as c_uint) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `name` in `dir` with `flags` (and `O_CLOEXEC`).
pub(crate) fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> Result<OwnedFd, i32> {
    // SAFETY: `name` is a valid NUL-terminated string alive for the call.
    let fd = unsafe { openat(dir.as_raw_fd(), name.as_ptr(), flags | O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears `O_NONBLOCK` (and the other status flags) of `fd`.
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> Result<(), i32> {
    // SAFETY: no pointers; F_SETFL reads one int argument.
    check(c_long::from(unsafe {
        fcntl(fd.as_raw_fd(), F_SETFL, 0 as c_int)
    }))
}

/// Renames `from` to `to`, both in `dir`: an entry at `to` (a file or a
/// symlink, never followed) is replaced at once.
pub(crate) fn rename_in(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> Result<(), i32> {
    // SAFETY: both names are valid NUL-terminated strings alive for the
    // call.
    check(c_long::from(unsafe {
        renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr())
    }))
}

/// Removes the (non-directory) entry `name` from `dir`.
pub(crate) fn unlink_in(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), i32> {
    // SAFETY: `name` is a valid NUL-terminated string alive for the call.
    check(c_long::from(unsafe {
        unlinkat(dir.as_raw_fd(), name.as_ptr(), 0)
    }))
}

/// What `statx` says of an entry: its mode (type and permission bits)
/// and size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) mode: u32,
    pub(crate) size: u64,
}

/// `statx` of `name` in `dir`, not following it if it is a symlink; an
/// empty `name` describes `dir` itself.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Stat, i32> {
    let mut buf = Statx {
        mask: 0,
        blksize: 0,
        attributes: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        mode: 0,
        spare0: 0,
        ino: 0,
        size: 0,
        rest: [0; 26],
    };
    let flags = AT_SYMLINK_NOFOLLOW | if name.is_empty() { AT_EMPTY_PATH } else { 0 };
    // SAFETY: `name` is a valid NUL-terminated string and `buf` a writable
    // `struct statx`, both alive for the call.
    check(c_long::from(unsafe {
        statx(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags,
            STATX_TYPE | STATX_MODE | STATX_SIZE,
            &mut buf,
        )
    }))?;
    Ok(Stat {
        mode: u32::from(buf.mode),
        size: buf.size,
    })
}

/// The target of the symlink `name` in `dir` (at most `PATH_MAX` bytes).
pub(crate) fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `name` is a valid NUL-terminated string; `buf` is writable
    // for its length; both are alive for the call.
    let n = unsafe {
        readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| errno())?;
    if n >= buf.len() {
        return Err(36); // ENAMETOOLONG
    }
    buf.truncate(n);
    Ok(buf)
}

/// Calls `each` with the name of every entry of the directory `dir` (open
/// for reading), `.` and `..` left out, until it returns `false`; reads
/// 64 KiB of entries per system call.
pub(crate) fn each_name(
    dir: BorrowedFd<'_>,
    mut each: impl FnMut(&CStr) -> bool,
) -> Result<(), i32> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: `buf` is writable for its length and alive for the call.
        let n = unsafe { getdents64(dir.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = usize::try_from(n).map_err(|_| errno())?;
        if n == 0 {
            return Ok(());
        }
        // `struct linux_dirent64`: ino u64, off i64, reclen u16, type u8,
        // then the NUL-terminated name, padded to `reclen`.
        let mut records = buf.get(..n).unwrap_or_default();
        while let Some(&[lo, hi]) = records.get(16..18) {
            let reclen = usize::from(u16::from_ne_bytes([lo, hi]));
            let Some(record) = records.get(..reclen).filter(|_| reclen > 19) else {
                return Err(5); // EIO: the kernel's records do not add up
            };
            let name = record
                .get(19..)
                .and_then(|rest| CStr::from_bytes_until_nul(rest).ok())
                .ok_or(5)?;
            if name != c"." && name != c".." && !each(name) {
                return Ok(());
            }
            records = records.get(reclen..).unwrap_or_default();
        }
    }
}
