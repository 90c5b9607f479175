//! Starting a control-channel command without copying the agent: `clone`
//! with `CLONE_VM | CLONE_VFORK`, as `posix_spawn` does.
//!
//! `fork` copies the agent's page tables and marks its memory
//! copy-on-write, so every thread of every session still running (its
//! stack, its buffers) costs page faults afterwards. Under an emulating
//! hypervisor each fault is expensive, and an `exec` got slower with each
//! command still running in the VM: about 150 ms more per running command
//! here. The child made here shares the agent's memory, and the calling
//! thread waits until it has executed the program (or failed to), so
//! nothing is copied.
//!
//! The child runs on a stack of its own and makes only raw system calls
//! (no allocation, no lock, no C library wrapper that could signal the
//! agent's threads): its standard streams, working directory, resource
//! limits, user, process group (or session and terminal), then the signal
//! state a new program
//! expects, then `execve`. Everything it needs is prepared before the
//! `clone`. A failing step's errno is left in memory the parent reads once
//! the child has ended.

use std::{
    collections::BTreeMap,
    ffi::{CString, c_char, c_int, c_long, c_void},
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    sync::atomic::{AtomicI32, Ordering},
};

use super::command::{Program, resolve};

#[cfg(target_arch = "x86_64")]
mod nr {
    use std::ffi::c_long;
    pub(super) const RT_SIGACTION: c_long = 13;
    pub(super) const RT_SIGPROCMASK: c_long = 14;
    pub(super) const IOCTL: c_long = 16;
    pub(super) const EXECVE: c_long = 59;
    pub(super) const EXIT: c_long = 60;
    pub(super) const CHDIR: c_long = 80;
    pub(super) const SETPGID: c_long = 109;
    pub(super) const SETSID: c_long = 112;
    pub(super) const SETGROUPS: c_long = 116;
    pub(super) const SETRESUID: c_long = 117;
    pub(super) const SETRESGID: c_long = 119;
    pub(super) const WAIT4: c_long = 61;
    pub(super) const DUP3: c_long = 292;
    pub(super) const PRLIMIT64: c_long = 302;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    use std::ffi::c_long;
    pub(super) const RT_SIGACTION: c_long = 134;
    pub(super) const RT_SIGPROCMASK: c_long = 135;
    pub(super) const IOCTL: c_long = 29;
    pub(super) const EXECVE: c_long = 221;
    pub(super) const EXIT: c_long = 93;
    pub(super) const CHDIR: c_long = 49;
    pub(super) const SETPGID: c_long = 154;
    pub(super) const SETSID: c_long = 157;
    pub(super) const SETGROUPS: c_long = 159;
    pub(super) const SETRESUID: c_long = 147;
    pub(super) const SETRESGID: c_long = 149;
    pub(super) const WAIT4: c_long = 260;
    pub(super) const DUP3: c_long = 24;
    pub(super) const PRLIMIT64: c_long = 261;
}

unsafe extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn clone(
        child: extern "C" fn(*mut c_void) -> c_int,
        stack: *mut c_void,
        flags: c_int,
        arg: *mut c_void,
        ...
    ) -> c_int;
}

const CLONE_VM: c_int = 0x0000_0100;
const CLONE_VFORK: c_int = 0x0000_4000;
const SIGCHLD: c_int = 17;
const SIGPIPE: c_long = 13;
const SIG_SETMASK: c_long = 2;
const TIOCSCTTY: c_long = 0x540E;
const F_DUPFD_CLOEXEC: c_int = 1030;
/// The child's stack: it makes system calls and nothing else.
const STACK_SIZE: usize = 64 << 10;

/// The kernel's `struct sigaction` (for `SIG_DFL`: all zero).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Everything the child reads, made before the `clone`.
struct Plan {
    path: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    workdir: CString,
    /// stdin, stdout, stderr: descriptors above 2.
    stdio: [c_int; 3],
    /// (resource, soft, hard).
    rlimits: Vec<(c_long, [u64; 2])>,
    /// (uid, gid, groups).
    user: Option<(c_long, c_long, Vec<u32>)>,
    /// Becomes a session leader with stdin as its controlling terminal
    /// (else the leader of a process group of its own).
    terminal: bool,
    /// The errno of the step that failed (0: none).
    failed: AtomicI32,
}

/// A command started by [`spawn`].
#[derive(Debug)]
pub(crate) struct Spawned {
    pid: c_int,
}

impl Spawned {
    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        u32::try_from(self.pid).unwrap_or(0)
    }

    /// Waits for it to end.
    pub(crate) fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let mut status: c_int = 0;
        loop {
            // SAFETY: `status` is a valid, writable int for the call; no
            // rusage.
            let got = unsafe {
                syscall(
                    nr::WAIT4,
                    self.pid as c_long,
                    &mut status as *mut c_int,
                    0 as c_int,
                    std::ptr::null_mut::<c_void>(),
                )
            };
            if got >= 0 {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// The environment as `std::process::Command` builds it from `NAME=value`
/// entries: one entry a name (the last given wins), in name order; an
/// entry without `=` or with an empty name is left out.
fn environment(env: &[Vec<u8>]) -> io::Result<Vec<CString>> {
    let mut vars = BTreeMap::new();
    for entry in env {
        let mut parts = entry.splitn(2, |&b| b == b'=');
        if let (Some(name), Some(value)) = (parts.next(), parts.next())
            && !name.is_empty()
        {
            vars.insert(name, value);
        }
    }
    vars.into_iter()
        .map(|(name, value)| c_string([name, b"=", value].concat()))
        .collect()
}

fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(22))
}

/// A copy of `fd` numbered above 2, so that placing the streams on 0, 1
/// and 2 cannot overwrite one with another.
fn above_stdio(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    unsafe extern "C" {
        fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    }
    // SAFETY: no pointers; `fd` is open for the borrow.
    let copy = unsafe { fcntl(fd.as_raw_fd(), F_DUPFD_CLOEXEC, 3 as c_int) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a descriptor the kernel just made, owned by nothing
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Starts `program` with `stdio` as its stdin, stdout and stderr, as a
/// session leader whose controlling terminal is its stdin if `terminal`,
/// else as the leader of a process group of its own (so that what it
/// starts can be killed with it, see `tree`).
/// An error is the errno of the step that failed (a missing program is
/// `ENOENT`, as from `execve`).
pub(crate) fn spawn(
    program: &Program<'_>,
    stdio: [BorrowedFd<'_>; 3],
    terminal: bool,
) -> io::Result<Spawned> {
    let copies = stdio
        .iter()
        .map(|fd| above_stdio(fd.as_fd()))
        .collect::<io::Result<Vec<_>>>()?;
    let args: Vec<CString> = std::iter::once(program.exec())
        .chain(program.args.iter().map(Vec::as_slice))
        .map(|a| c_string(a.to_vec()))
        .collect::<io::Result<_>>()?;
    let env = environment(program.env)?;
    let pointers = |strings: &[CString]| {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let mut plan = Plan {
        path: c_string(resolve(program.exec(), program.env))?,
        argv: pointers(&args),
        envp: pointers(&env),
        workdir: c_string(program.workdir().to_vec())?,
        stdio: [0, 1, 2].map(|i| copies.get(i).map_or(-1, AsRawFd::as_raw_fd)),
        rlimits: program
            .rlimits
            .iter()
            .map(|l| (c_long::from(l.resource), [l.soft, l.hard]))
            .collect(),
        user: program
            .user
            .map(|u| (c_long::from(u.uid), c_long::from(u.gid), u.groups.clone())),
        terminal,
        failed: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; STACK_SIZE];
    // The top of the stack, 16-byte aligned (it grows down).
    let top = stack
        .as_mut_ptr()
        .wrapping_add(STACK_SIZE)
        .wrapping_sub(stack.as_ptr().wrapping_add(STACK_SIZE) as usize % 16);
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: valid sigset pointers of the kernel's size (8 bytes). No
    // signal handler runs in the child while it shares our memory.
    unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8usize,
        );
    }
    // SAFETY: `child` only makes raw system calls on `plan`, which lives
    // (borrowed mutably by nothing else) until `clone` returns: with
    // CLONE_VFORK this thread is suspended until the child has executed
    // the program or exited, so nothing else touches `plan` or `stack`
    // meanwhile. `top` is the aligned end of `stack`.
    let pid = unsafe {
        clone(
            child,
            top.cast::<c_void>(),
            CLONE_VM | CLONE_VFORK | SIGCHLD,
            (&mut plan as *mut Plan).cast::<c_void>(),
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: as above; restores this thread's mask.
    unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
    drop(stack);
    if pid < 0 {
        return Err(clone_error);
    }
    let mut spawned = Spawned { pid };
    match plan.failed.load(Ordering::SeqCst) {
        0 => Ok(spawned),
        errno => {
            spawned.wait()?;
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child: each step, then `execve`; on a failure, its errno is left in
/// the plan and the child exits with 127.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the plan `spawn` passed, alive and untouched by the
    // suspended parent until this child has executed or exited.
    let plan = unsafe { &*arg.cast::<Plan>() };
    let errno = match prepare(plan) {
        Err(errno) => errno,
        // execve returned without an error: not an executable.
        Ok(()) => 8, // ENOEXEC
    };
    plan.failed.store(errno, Ordering::SeqCst);
    // SAFETY: no pointers; ends this child only.
    unsafe {
        syscall(nr::EXIT, 127 as c_long);
    }
    127
}

/// `syscall` with its -1 as the errno.
fn check(status: c_long) -> Result<(), i32> {
    if status < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(5))
    } else {
        Ok(())
    }
}

/// The child's steps; returns only on a failure (`execve` does not).
fn prepare(plan: &Plan) -> Result<(), i32> {
    for (target, &source) in plan.stdio.iter().enumerate() {
        // SAFETY: no pointers. dup3 leaves the new descriptor inheritable.
        check(unsafe { syscall(nr::DUP3, source as c_long, target as c_long, 0 as c_long) })?;
    }
    // SAFETY: `workdir` is a valid NUL-terminated string.
    check(unsafe { syscall(nr::CHDIR, plan.workdir.as_ptr()) })?;
    for (resource, limit) in &plan.rlimits {
        // SAFETY: `limit` is a valid `struct rlimit64` (two u64) for the
        // call; no old value asked for. Raw: the C library's wrapper may
        // involve the agent's other threads.
        check(unsafe {
            syscall(
                nr::PRLIMIT64,
                0 as c_long,
                *resource,
                limit.as_ptr(),
                std::ptr::null_mut::<u64>(),
            )
        })?;
    }
    if let Some((uid, gid, groups)) = &plan.user {
        // SAFETY: `groups` is valid for `groups.len()` gid_t values. Raw
        // calls change this process only (the C library's would signal the
        // agent's threads).
        check(unsafe { syscall(nr::SETGROUPS, groups.len(), groups.as_ptr()) })?;
        // SAFETY: no pointers.
        check(unsafe { syscall(nr::SETRESGID, *gid, *gid, *gid) })?;
        // SAFETY: no pointers.
        check(unsafe { syscall(nr::SETRESUID, *uid, *uid, *uid) })?;
    }
    if plan.terminal {
        // SAFETY: no pointers.
        check(unsafe { syscall(nr::SETSID) })?;
        // SAFETY: TIOCSCTTY takes an integer argument.
        check(unsafe { syscall(nr::IOCTL, 0 as c_long, TIOCSCTTY, 0 as c_long) })?;
    } else {
        // SAFETY: no pointers; setpgid(0, 0): a group of its own.
        check(unsafe { syscall(nr::SETPGID, 0 as c_long, 0 as c_long) })?;
    }
    // What a new program expects: SIGPIPE's default action (the agent
    // ignores it, as Rust programs do) and no blocked signal.
    let default = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `default` is a valid kernel sigaction of the size passed.
    check(unsafe {
        syscall(
            nr::RT_SIGACTION,
            SIGPIPE,
            &default as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    })?;
    let none: u64 = 0;
    // SAFETY: a valid sigset of the kernel's size.
    check(unsafe {
        syscall(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &none as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    })?;
    // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings and
    // NULL-terminated arrays of them, alive while the parent waits.
    check(unsafe {
        syscall(
            nr::EXECVE,
            plan.path.as_ptr(),
            plan.argv.as_ptr(),
            plan.envp.as_ptr(),
        )
    })
}

#[cfg(test)]
mod tests;
