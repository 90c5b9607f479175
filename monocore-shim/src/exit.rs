//! How a task ends: its exit status, as containerd records it, and the
//! process calls that watch and signal a VM's helper.

use std::time::SystemTime;

use monocore::vm::VmExitStatus;

/// The exit status of a task whose VM failed to boot or to run its command
/// (the `monocore` command's code for a monocore failure).
pub const EXIT_BOOT_FAILED: u32 = 125;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The VM helper's pid (0 if the VM never started).
    pub pid: u32,
    /// The exit status.
    pub status: u32,
    /// When.
    pub at: SystemTime,
}

impl Exit {
    /// The end of a task that never ran.
    pub fn never() -> Self {
        Self {
            pid: 0,
            status: 0,
            at: SystemTime::now(),
        }
    }

    /// A task that failed to start, in the VM whose helper is `pid`.
    pub fn failed(pid: u32) -> Self {
        Self {
            pid,
            status: EXIT_BOOT_FAILED,
            at: SystemTime::now(),
        }
    }
}

/// The task exit status of a VM's end: the guest's exit code, or 128+N
/// when the VM was killed by signal N.
pub fn exit_status(status: VmExitStatus) -> u32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u32::from_ne_bytes(code.to_ne_bytes()) & 0xff,
        (None, Some(signal)) => 128 + (u32::from_ne_bytes(signal.to_ne_bytes()) & 0x7f),
        (None, None) => EXIT_BOOT_FAILED,
    }
}

/// Blocks until child `pid` has exited, without reaping it (the VM handle
/// reaps it).
pub fn wait_until_exited(pid: u32) {
    let id: libc::id_t = pid;
    loop {
        // SAFETY: an all-zero `siginfo_t` is a valid value of this plain C
        // struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable `siginfo_t` for the call's
        // duration; WNOWAIT leaves the child waitable.
        let ret =
            unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if ret == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The one process `pid` names, if it names one: never 0 (which `kill`
/// reads as this whole process group) and never a number beyond `pid_t`
/// (which would turn negative: a process group, or every process).
pub fn one_process(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&raw| raw > 0)
        .and_then(rustix::process::Pid::from_raw)
}

#[cfg(test)]
mod tests {
    use rustix::process::Pid;

    use super::one_process;

    #[test]
    fn a_pid_that_names_no_one_process_is_never_signalled() {
        // kill(0) signals this process group; u32::MAX is -1 as a pid_t,
        // every process; 2^31 is a negative group.
        assert_eq!(one_process(0), None);
        assert_eq!(one_process(u32::MAX), None);
        assert_eq!(one_process(1 << 31), None);
        assert_eq!(Pid::as_raw(one_process(42)), 42);
        assert_eq!(Pid::as_raw(one_process(i32::MAX as u32)), i32::MAX);
    }
}
