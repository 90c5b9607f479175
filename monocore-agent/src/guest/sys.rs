//! The few Linux system calls the agent needs that `std` does not wrap,
//! each behind a safe function that takes C strings and file descriptors as
//! `OwnedFd`/`BorrowedFd` (never a bare integer, except the three stdio
//! descriptors, named by [`StdioFd`]) and returns the errno.
//!
//! They call the C library directly rather than through rustix: the agent
//! package has no dependencies, because monocore's build script compiles
//! it with `rustc` alone (statically, for the guest), where no other crate
//! is available.

use std::{
    ffi::{CStr, CString, c_char, c_int, c_long, c_uint, c_ulong, c_void},
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use monocore_agent::control::WinSize;

pub(crate) const MS_RDONLY: c_ulong = 1;
pub(crate) const MS_NOSUID: c_ulong = 2;
pub(crate) const MS_NODEV: c_ulong = 4;
pub(crate) const MS_NOEXEC: c_ulong = 8;
pub(crate) const MS_REMOUNT: c_ulong = 32;
pub(crate) const MS_BIND: c_ulong = 4096;
pub(crate) const MS_REC: c_ulong = 1 << 14;
pub(crate) const MS_PRIVATE: c_ulong = 1 << 18;
pub(crate) const MS_RELATIME: c_ulong = 1 << 21;
const MNT_DETACH: c_int = 2;
const CLONE_NEWNS: c_int = 0x0002_0000;

#[cfg(target_arch = "x86_64")]
const SYS_PIVOT_ROOT: c_long = 155;
#[cfg(target_arch = "aarch64")]
const SYS_PIVOT_ROOT: c_long = 41;
#[cfg(target_arch = "x86_64")]
const SYS_SETGROUPS: c_long = 116;
#[cfg(target_arch = "aarch64")]
const SYS_SETGROUPS: c_long = 159;
#[cfg(target_arch = "x86_64")]
const SYS_SETRESUID: c_long = 117;
#[cfg(target_arch = "aarch64")]
const SYS_SETRESUID: c_long = 147;
#[cfg(target_arch = "x86_64")]
const SYS_SETRESGID: c_long = 119;
#[cfg(target_arch = "aarch64")]
const SYS_SETRESGID: c_long = 149;

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
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn posix_openpt(flags: c_int) -> c_int;
    fn grantpt(fd: c_int) -> c_int;
    fn unlockpt(fd: c_int) -> c_int;
    fn ptsname_r(fd: c_int, buf: *mut c_char, len: usize) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn bind(fd: c_int, addr: *const SockaddrVm, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn accept4(fd: c_int, addr: *mut c_void, len: *mut u32, flags: c_int) -> c_int;
    fn kill(pid: c_int, signal: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn shutdown(fd: c_int, how: c_int) -> c_int;
}

const F_DUPFD_CLOEXEC: c_int = 1030;
const O_RDWR: c_int = 2;
const O_NOCTTY: c_int = 0o400;
const O_CLOEXEC: c_int = 0o2000000;
const TIOCSWINSZ: c_ulong = 0x5414;
const AF_VSOCK: c_int = 40;
const SOCK_STREAM: c_int = 1;
const SOCK_CLOEXEC: c_int = O_CLOEXEC;
const VMADDR_CID_ANY: u32 = u32::MAX;

/// `struct sockaddr_vm`.
#[repr(C)]
struct SockaddrVm {
    family: u16,
    reserved: u16,
    port: u32,
    cid: u32,
    flags: u8,
    zero: [u8; 3],
}

/// `struct winsize`.
#[repr(C)]
struct Winsize {
    rows: u16,
    cols: u16,
    xpixel: u16,
    ypixel: u16,
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// A new fd from a call that returns one (or -1).
fn owned(fd: c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

/// In a forked child about to execute a command: exactly the supplementary
/// `groups`, then the group `gid`, then the user `uid` (real, effective and
/// saved). Raw system calls, which change the calling thread only (the C
/// library's wrappers would signal every thread of the process), and
/// async-signal-safe: nothing is allocated.
pub(crate) fn set_user(uid: u32, gid: u32, groups: &[u32]) -> Result<(), i32> {
    // SAFETY: `groups` is valid for `groups.len()` gid_t (u32) values for
    // the call.
    check(unsafe { syscall(SYS_SETGROUPS, groups.len(), groups.as_ptr()) })?;
    let (gid, uid) = (c_long::from(gid), c_long::from(uid));
    // SAFETY: no pointers.
    check(unsafe { syscall(SYS_SETRESGID, gid, gid, gid) })?;
    // SAFETY: no pointers.
    check(unsafe { syscall(SYS_SETRESUID, uid, uid, uid) })
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

/// One of the process's standard I/O descriptors: the only descriptors the
/// agent names by number, because they belong to the process rather than
/// to an `OwnedFd`, and may be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdioFd {
    /// 0.
    In,
    /// 1.
    Out,
    /// 2.
    Err,
}

impl StdioFd {
    fn raw(self) -> c_int {
        match self {
            Self::In => 0,
            Self::Out => 1,
            Self::Err => 2,
        }
    }
}

/// A duplicate of `fd` (close-on-exec, numbered 3 or above), owned by the
/// caller; `EBADF` when `fd` is closed. The duplicate stays open whatever
/// happens to `fd`, so inspecting it never needs a borrow of a descriptor
/// that may be closed.
pub(crate) fn dup_stdio(fd: StdioFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and only reads the
    // descriptor table; it fails with EBADF on a closed descriptor.
    owned(unsafe { fcntl(fd.raw(), F_DUPFD_CLOEXEC, 3 as c_int) })
}

/// `dup2(source, target)`: `target` becomes a copy of `source` (closed
/// first if open; it is a stdio descriptor, owned by no `OwnedFd`).
pub(crate) fn replace_stdio(source: BorrowedFd<'_>, target: StdioFd) -> Result<(), i32> {
    // SAFETY: dup2 takes two integers: `source` is open for the call (it is
    // borrowed), and `target` is 0, 1 or 2, which no `OwnedFd` owns.
    check(c_long::from(unsafe {
        dup2(source.as_raw_fd(), target.raw())
    }))
}

/// A new pseudo-terminal master, granted and unlocked.
pub(crate) fn open_pty_master() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let master = owned(unsafe { posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC) })?;
    // SAFETY: `master` is an open pty master for both calls.
    if unsafe { grantpt(master.as_raw_fd()) } != 0 || unsafe { unlockpt(master.as_raw_fd()) } != 0 {
        return Err(last_error());
    }
    Ok(master)
}

/// The path of the slave of pty `master`.
pub(crate) fn pty_slave_name(master: BorrowedFd<'_>) -> io::Result<CString> {
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is writable for its whole length, which is passed.
    let status = unsafe { ptsname_r(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status));
    }
    CStr::from_bytes_until_nul(&buf)
        .map(CStr::to_owned)
        .map_err(|_| io::Error::from_raw_os_error(34)) // ERANGE
}

/// `open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)`.
pub(crate) fn open_noctty(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string alive for the call.
    owned(unsafe { open(path.as_ptr(), O_RDWR | O_NOCTTY | O_CLOEXEC) })
}

/// Sets the terminal size of `fd` (`TIOCSWINSZ`).
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = Winsize {
        rows: size.rows,
        cols: size.cols,
        xpixel: 0,
        ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `struct winsize`, which `ws` is, alive for
    // the call.
    if unsafe { ioctl(fd.as_raw_fd(), TIOCSWINSZ, &ws) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// `kill(pid, signal)` for the one process `pid`; `ESRCH` for a pid that
/// names no single process (0 would signal the agent's whole process group,
/// and one above `i32::MAX` would wrap to a negative pid: a group, or every
/// process).
pub(crate) fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = c_int::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(3))?; // ESRCH
    // SAFETY: no pointers.
    if unsafe { kill(pid, signal) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Sends `signal` to `target` as `kill(2)` reads it: a process (> 0) or a
/// process group (< -1). 0, -1 and PID 1's group are refused (`ESRCH`):
/// they would reach the agent or every process.
pub(crate) fn send_signal_raw(target: i64, signal: i32) -> io::Result<()> {
    let target = c_int::try_from(target)
        .ok()
        .filter(|t| !(-1..=1).contains(t))
        .ok_or_else(|| io::Error::from_raw_os_error(3))?;
    // SAFETY: no pointers.
    if unsafe { kill(target, signal) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Reaps `pid` if it is this process's child and has ended; whether it is
/// gone (reaped now, or no longer there at all).
pub(crate) fn reap_if_ended(pid: u32) -> bool {
    const WNOHANG: c_int = 1;
    const WALL: c_int = 0x4000_0000;
    let Some(pid) = c_int::try_from(pid).ok().filter(|&p| p > 1) else {
        return true;
    };
    let mut status: c_int = 0;
    // SAFETY: `status` is a valid, writable int for the call.
    let got = unsafe { waitpid(pid, &mut status, WNOHANG | WALL) };
    match got {
        0 => false,
        got if got > 0 => true,
        // ECHILD: not (yet) ours; gone if /proc has no entry.
        _ => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// A vsock stream socket listening on `port` of any CID.
pub(crate) fn vsock_listen(port: u32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = owned(unsafe { socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0) })?;
    let addr = SockaddrVm {
        family: AF_VSOCK as u16,
        reserved: 0,
        port,
        cid: VMADDR_CID_ANY,
        flags: 0,
        zero: [0; 3],
    };
    let size = std::mem::size_of::<SockaddrVm>() as u32;
    // SAFETY: `addr` is a valid sockaddr_vm of the size passed, alive for
    // the call.
    if unsafe { bind(fd.as_raw_fd(), &addr, size) } < 0 {
        return Err(last_error());
    }
    // SAFETY: no pointers.
    if unsafe { listen(fd.as_raw_fd(), 16) } < 0 {
        return Err(last_error());
    }
    Ok(fd)
}

/// Accepts a connection on the listening socket `listener`.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: NULL address and length: the peer address is not wanted.
        let conn = unsafe {
            accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                SOCK_CLOEXEC,
            )
        };
        match owned(conn) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `shutdown(socket, SHUT_WR)`: the peer reads the end of the stream.
pub(crate) fn shutdown_write(socket: BorrowedFd<'_>) -> io::Result<()> {
    const SHUT_WR: c_int = 1;
    // SAFETY: no pointers; `socket` is open for the call (it is borrowed).
    if unsafe { shutdown(socket.as_raw_fd(), SHUT_WR) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{fs::File, os::fd::AsFd, os::unix::fs::MetadataExt};

    use super::*;

    #[test]
    fn a_pid_that_names_no_single_process_is_never_signalled() {
        // Signal 0 only checks; before the fix, pid 0 reached kill(0, 0),
        // which succeeds (it addresses the whole process group).
        for pid in [0, u32::MAX, 1 << 31] {
            let err = send_signal(pid, 0).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(3), "{pid}");
        }
        assert!(send_signal(std::process::id(), 0).is_ok());
    }

    #[test]
    fn a_stdio_duplicate_is_owned_and_is_the_same_file() {
        let dup = dup_stdio(StdioFd::Err).unwrap();
        assert!(dup.as_raw_fd() > 2);
        let dup = File::from(dup).metadata().unwrap();
        let dup_again = File::from(dup_stdio(StdioFd::Err).unwrap())
            .metadata()
            .unwrap();
        assert_eq!((dup.dev(), dup.ino()), (dup_again.dev(), dup_again.ino()));
    }

    #[test]
    fn a_pty_gets_its_size_and_its_slave_opens() {
        let Ok(master) = open_pty_master() else {
            eprintln!("skipped: no pseudo-terminals here");
            return;
        };
        let name = pty_slave_name(master.as_fd()).unwrap();
        let slave = open_noctty(&name).unwrap();
        set_winsize(master.as_fd(), WinSize { rows: 12, cols: 34 }).unwrap();
        let mut ws = Winsize {
            rows: 0,
            cols: 0,
            xpixel: 0,
            ypixel: 0,
        };
        const TIOCGWINSZ: c_ulong = 0x5413;
        // SAFETY: TIOCGWINSZ writes a `struct winsize`, which `ws` is.
        assert_eq!(unsafe { ioctl(slave.as_raw_fd(), TIOCGWINSZ, &mut ws) }, 0);
        assert_eq!((ws.rows, ws.cols), (12, 34));
    }
}
