//! The library of a crate that uses monocore, as a user's crate would: what
//! its programs (`src/bin/`) and tests share.

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    kernel::KernelChoice,
    rootfs::RunRootfs,
    vm,
    vm::{MicroVm, SpawnOptions, VmExitStatus},
};

/// What a VM run left: how it ended, and its console.
pub type Run = (Result<VmExitStatus, MonocoreError>, String);

/// Runs `/bin/echo <text>` in a VM on the default busybox rootfs.
pub fn echo(text: &str) -> Result<Run, MonocoreError> {
    let rootfs = RunRootfs::busybox()?;
    let config = vm! {
        root: rootfs.path(),
        ram: 256,
        exec: "/bin/echo",
        args: [text],
    };
    let mut vm =
        MicroVm::from_config(config)?.spawn_with(&SpawnOptions::new().capture_console(true))?;
    let outcome = vm.wait();
    Ok((
        outcome,
        String::from_utf8_lossy(&vm.console_output()).into_owned(),
    ))
}

/// Spawns a VM whose kernel file is not a kernel: the helper gets as far as
/// libkrun's `krun_start_enter`, whose loader refuses it, at once and on any
/// host.
pub fn spawn_to_start_enter() -> Result<Run, MonocoreError> {
    let rootfs = RunRootfs::busybox()?;
    let kernel = rootfs.path().join("not-a-kernel");
    std::fs::write(&kernel, b"\x7fELF, but not a kernel")?;
    let config = vm! { root: rootfs.path(), ram: 128, exec: "/bin/true" };
    let options = SpawnOptions::new()
        .capture_console(true)
        .kernel(KernelChoice::Elf(kernel));
    let mut vm = MicroVm::from_config(config)?.spawn_with(&options)?;
    let outcome = vm.wait();
    Ok((
        outcome,
        String::from_utf8_lossy(&vm.console_output()).into_owned(),
    ))
}

/// Whether `outcome` shows that `spawn` reached the VMM: a guest exit
/// status, a guest that failed to boot, or libkrun's own
/// `krun_start_enter` error. A helper that could not start or failed
/// before the VMM (`SelfHelper`, `Helper`, …) did not.
pub fn reached_the_vmm(outcome: &Result<VmExitStatus, MonocoreError>) -> bool {
    matches!(
        outcome,
        Ok(_)
            | Err(MonocoreError::BootFailed { .. }
                | MonocoreError::GuestSetup { .. }
                | MonocoreError::GuestAgentSilent { .. }
                | MonocoreError::Krun {
                    call: "krun_start_enter",
                    ..
                })
    )
}

/// `error` and each of its causes, `: `-separated.
pub fn chain(error: &dyn std::error::Error) -> String {
    monocore::ErrorChain(error).to_string()
}

/// The device and inode of `path` (following symlinks, so for
/// `/proc/<pid>/exe` the file the process runs, even if it was replaced or
/// deleted on disk).
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The processes, other than this one, that run the file `file` (a
/// [`file_id`]): for a program's own executable, its VM helpers.
pub fn processes_running(file: (u64, u64)) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| file_id(&Path::new("/proc").join(pid.to_string()).join("exe")) == Some(file))
        .collect()
}

/// The children of this process (zombies included).
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid …`; comm may hold spaces or parens.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(me)
            })
        })
        .collect()
}

/// Prints the loud `SKIPPED: <test>: <reason>` line straight to stderr, past
/// the test harness's output capture, so it shows even when the test passes.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// Waits up to `limit` for `done`, polling.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}
