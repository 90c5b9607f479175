//! The system calls containers need, behind safe functions that take file
//! descriptors as `OwnedFd`/`BorrowedFd` and return the errno: path
//! resolution inside a root (`openat2` with `RESOLVE_IN_ROOT`), the
//! file-descriptor mount API (`open_tree`, `move_mount`, `mount_setattr`,
//! `fsopen`/`fsconfig`/`fsmount`; Linux 5.12, the guest kernel is 6.12),
//! and the namespace and root calls of one thread (`unshare`, `setns`,
//! `fchdir`, `chroot`).
//!
//! The numbers of the newer calls are the same on x86_64 and aarch64 (they
//! were added after the tables were unified).

use std::{
    ffi::{CStr, c_char, c_int, c_long, c_uint, c_void},
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

const SYS_OPEN_TREE: c_long = 428;
const SYS_MOVE_MOUNT: c_long = 429;
const SYS_FSOPEN: c_long = 430;
const SYS_FSCONFIG: c_long = 431;
const SYS_FSMOUNT: c_long = 432;
const SYS_OPENAT2: c_long = 437;
const SYS_MOUNT_SETATTR: c_long = 442;

const AT_FDCWD: c_int = -100;
const AT_EMPTY_PATH: c_uint = 0x1000;
const AT_RECURSIVE: c_uint = 0x8000;
const OPEN_TREE_CLONE: c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;
const FSOPEN_CLOEXEC: c_uint = 1;
const FSMOUNT_CLOEXEC: c_uint = 1;
const FSCONFIG_SET_STRING: c_uint = 1;
const FSCONFIG_CMD_CREATE: c_uint = 6;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;
const CLONE_FS: c_int = 0x0000_0200;
const CLONE_NEWNS: c_int = 0x0002_0000;

pub(crate) const O_RDONLY: c_int = 0;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_EXCL: c_int = 0o200;
pub(crate) const O_CLOEXEC: c_int = 0o2_000_000;
pub(crate) const O_PATH: c_int = 0o10_000_000;
#[cfg(target_arch = "x86_64")]
pub(crate) const O_DIRECTORY: c_int = 0o200_000;
#[cfg(target_arch = "x86_64")]
const O_NOFOLLOW: c_int = 0o400_000;
#[cfg(target_arch = "aarch64")]
pub(crate) const O_DIRECTORY: c_int = 0o40_000;
#[cfg(target_arch = "aarch64")]
const O_NOFOLLOW: c_int = 0o100_000;

/// `MOUNT_ATTR_*`: what a new or changed mount is.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x04;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x08;

const S_IFCHR: c_uint = 0o020_000;

/// `struct open_how` (`openat2`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `struct mount_attr` (`mount_setattr`), its first version.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

unsafe extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn unshare(flags: c_int) -> c_int;
    fn setns(fd: c_int, nstype: c_int) -> c_int;
    fn fchdir(fd: c_int) -> c_int;
    fn chroot(path: *const c_char) -> c_int;
    fn mkdirat(dirfd: c_int, path: *const c_char, mode: c_uint) -> c_int;
    fn mknodat(dirfd: c_int, path: *const c_char, mode: c_uint, dev: u64) -> c_int;
    fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> c_int;
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, ...) -> c_int;
    fn sethostname(name: *const c_char, len: usize) -> c_int;
    fn fchmodat(dirfd: c_int, path: *const c_char, mode: c_uint, flags: c_int) -> c_int;
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

fn check(status: c_long) -> Result<(), i32> {
    if status < 0 { Err(errno()) } else { Ok(()) }
}

/// A new fd from a call that returns one (or -1).
fn owned(fd: c_long) -> Result<OwnedFd, i32> {
    let fd = c_int::try_from(fd).map_err(|_| 9)?; // EBADF
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn raw(fd: BorrowedFd<'_>) -> c_long {
    c_long::from(fd.as_raw_fd())
}

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`:
/// `path` is resolved as if `root` were `/` (an absolute symlink or a `..`
/// leads no higher than `root`), and `/proc` magic links are refused.
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    flags: c_int,
) -> Result<OwnedFd, i32> {
    let how = OpenHow {
        flags: u64::try_from(flags | O_CLOEXEC).map_err(|_| 22)?,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // The kernel refuses a `..` it cannot prove safe while mounts or
    // renames happen elsewhere (EAGAIN, "retry"): other containers being
    // set up meanwhile are such changes.
    let mut attempts = 0;
    loop {
        // SAFETY: `path` is a valid NUL-terminated string and `how` a valid
        // `struct open_how` of the size passed, both alive for the call.
        let opened = owned(unsafe {
            syscall(
                SYS_OPENAT2,
                raw(root),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        });
        attempts += 1;
        match opened {
            Err(EAGAIN) if attempts < OPENAT2_ATTEMPTS => {}
            other => return other,
        }
    }
}

const EAGAIN: i32 = 11;
/// How often [`open_in_root`] tries when the kernel says to retry.
const OPENAT2_ATTEMPTS: u32 = 64;

/// `open(path, flags | O_CLOEXEC)`, resolved as the calling thread sees it.
pub(crate) fn open_path(path: &CStr, flags: c_int) -> Result<OwnedFd, i32> {
    // SAFETY: `path` is a valid NUL-terminated string alive for the call.
    owned(c_long::from(unsafe {
        openat(AT_FDCWD, path.as_ptr(), flags | O_CLOEXEC)
    }))
}

/// `mkdirat(dir, name, mode)`; an existing entry is `Err(EEXIST)`.
pub(crate) fn make_dir(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), i32> {
    // SAFETY: `name` is a valid NUL-terminated string alive for the call.
    check(c_long::from(unsafe {
        mkdirat(dir.as_raw_fd(), name.as_ptr(), mode)
    }))
}

/// Creates the empty file `name` in `dir` (`O_CREAT | O_EXCL |
/// O_NOFOLLOW`: an existing entry, a symlink included, is `Err(EEXIST)`
/// and is never followed).
pub(crate) fn make_file(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), i32> {
    let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    // SAFETY: `name` is a valid NUL-terminated string alive for the call;
    // the mode is the variadic argument O_CREAT reads.
    let fd = unsafe { openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as c_uint) };
    owned(c_long::from(fd)).map(drop)
}

/// `mknodat(dir, name, S_IFCHR | mode, major:minor)`: a character device.
pub(crate) fn make_char_device(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    (major, minor): (u32, u32),
) -> Result<(), i32> {
    // glibc's makedev, for numbers below 4096 and 256.
    let dev = (u64::from(major) << 8) | u64::from(minor);
    // SAFETY: `name` is a valid NUL-terminated string alive for the call.
    check(c_long::from(unsafe {
        mknodat(dir.as_raw_fd(), name.as_ptr(), S_IFCHR | mode, dev)
    }))
}

/// `fchmodat(dir, name, mode)`: the mode exactly (no umask applies).
pub(crate) fn set_mode(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), i32> {
    // SAFETY: `name` is a valid NUL-terminated string alive for the call.
    check(c_long::from(unsafe {
        fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0)
    }))
}

/// `symlinkat(target, dir, name)`.
pub(crate) fn make_symlink(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), i32> {
    // SAFETY: both strings are valid, NUL-terminated and alive for the call.
    check(c_long::from(unsafe {
        symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr())
    }))
}

/// A detached copy of the mount tree at `source` (`open_tree` with
/// `OPEN_TREE_CLONE`, recursive): what a bind mount attaches.
pub(crate) fn clone_tree(source: BorrowedFd<'_>) -> Result<OwnedFd, i32> {
    let flags = OPEN_TREE_CLONE | AT_EMPTY_PATH | AT_RECURSIVE | O_CLOEXEC as c_uint;
    // SAFETY: an empty path (a valid NUL-terminated string) with
    // AT_EMPTY_PATH names `source` itself.
    owned(unsafe { syscall(SYS_OPEN_TREE, raw(source), c"".as_ptr(), flags) })
}

/// Sets `attr` (`MOUNT_ATTR_*`) on the mount of `mount`, and on every mount
/// below it when `recursive`; other attributes stay as they are.
pub(crate) fn set_mount_attr(mount: BorrowedFd<'_>, attr: u64, recursive: bool) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: attr,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: an empty path with AT_EMPTY_PATH names `mount`; `attr` is a
    // valid `struct mount_attr` of the size passed, alive for the call.
    check(unsafe {
        syscall(
            SYS_MOUNT_SETATTR,
            raw(mount),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// Attaches the detached mount `mount` on `target` (`move_mount`).
pub(crate) fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), i32> {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: empty paths with the *_EMPTY_PATH flags name both fds.
    check(unsafe {
        syscall(
            SYS_MOVE_MOUNT,
            raw(mount),
            c"".as_ptr(),
            raw(target),
            c"".as_ptr(),
            flags,
        )
    })
}

/// A new, detached file system of type `fstype` (its source named so, as
/// `mount -t proc proc` does) with `options` (key, value) and the mount
/// attributes `attr` (`fsopen`, `fsconfig`, `fsmount`).
pub(crate) fn new_mount(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    attr: u64,
) -> Result<OwnedFd, i32> {
    // SAFETY: `fstype` is a valid NUL-terminated string alive for the call.
    let context = owned(unsafe { syscall(SYS_FSOPEN, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    for (key, value) in [(c"source", fstype)].iter().chain(options) {
        // SAFETY: `key` and `value` are valid NUL-terminated strings alive
        // for the call; FSCONFIG_SET_STRING reads both and no integer.
        check(unsafe {
            syscall(
                SYS_FSCONFIG,
                raw(context.as_fd()),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0 as c_int,
            )
        })?;
    }
    let null: *const c_void = std::ptr::null();
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or integer.
    check(unsafe {
        syscall(
            SYS_FSCONFIG,
            raw(context.as_fd()),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0 as c_int,
        )
    })?;
    // SAFETY: no pointers; `context` is an open file system context.
    owned(unsafe { syscall(SYS_FSMOUNT, raw(context.as_fd()), FSMOUNT_CLOEXEC, attr) })
}

/// Gives the calling thread a file system context (root, working
/// directory) and a mount namespace of its own, copies of the process's:
/// nothing it mounts or changes reaches the rest of the agent.
pub(crate) fn unshare_thread_mounts() -> Result<(), i32> {
    // SAFETY: no pointers; affects only the calling thread.
    check(c_long::from(unsafe { unshare(CLONE_FS | CLONE_NEWNS) }))
}

/// Moves the calling thread into the mount namespace `ns` (an
/// `/proc/…/ns/mnt` fd), after giving it a file system context of its own
/// (which `setns` needs, and which keeps the rest of the agent where it
/// is).
pub(crate) fn join_mounts(ns: BorrowedFd<'_>) -> Result<(), i32> {
    // SAFETY: no pointers; affects only the calling thread.
    check(c_long::from(unsafe { unshare(CLONE_FS) }))?;
    // SAFETY: no pointers; `ns` is open for the call (it is borrowed).
    check(c_long::from(unsafe { setns(ns.as_raw_fd(), CLONE_NEWNS) }))
}

/// Makes the directory `dir` the calling thread's working directory.
pub(crate) fn change_dir(dir: BorrowedFd<'_>) -> Result<(), i32> {
    // SAFETY: no pointers; `dir` is open for the call (it is borrowed).
    check(c_long::from(unsafe { fchdir(dir.as_raw_fd()) }))
}

/// Makes the directory `dir` the calling thread's root (and working
/// directory).
pub(crate) fn change_root(dir: BorrowedFd<'_>) -> Result<(), i32> {
    change_dir(dir)?;
    // SAFETY: "." is a valid NUL-terminated string.
    check(c_long::from(unsafe { chroot(c".".as_ptr()) }))?;
    std::env::set_current_dir("/").map_err(|e| e.raw_os_error().unwrap_or(5))
}

/// Sets the VM's hostname.
pub(crate) fn set_hostname(name: &[u8]) -> Result<(), i32> {
    // SAFETY: `name` is valid for `name.len()` bytes for the call.
    check(c_long::from(unsafe {
        sethostname(name.as_ptr().cast(), name.len())
    }))
}

/// `fstat` of `fd`, without a copy of the descriptor (one system call).
pub(crate) fn metadata(fd: BorrowedFd<'_>) -> Result<std::fs::Metadata, i32> {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is open for the borrow, and the `File` is never dropped
    // (ManuallyDrop), so it does not close a descriptor it does not own.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) });
    file.metadata().map_err(|e| e.raw_os_error().unwrap_or(5))
}

#[cfg(target_arch = "x86_64")]
const SYS_SCHED_SETSCHEDULER: c_long = 144;
#[cfg(target_arch = "aarch64")]
const SYS_SCHED_SETSCHEDULER: c_long = 119;
const SCHED_IDLE: c_long = 5;

/// Puts the calling thread in the idle scheduling class: it runs only when
/// nothing else would.
pub(crate) fn lowest_priority() -> Result<(), i32> {
    let param: c_int = 0;
    // SAFETY: `param` is a valid `struct sched_param` (one int) for the
    // call; pid 0 is the calling thread.
    check(unsafe {
        syscall(
            SYS_SCHED_SETSCHEDULER,
            0 as c_long,
            SCHED_IDLE,
            &param as *const c_int,
        )
    })
}
