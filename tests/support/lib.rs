//! Helpers shared by monocore's integration tests and benchmarks (and,
//! later, the CLI's tests): a busybox root filesystem, the gate that decides
//! whether real-boot tests can run, loud skip reporting, and process checks.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use monocore::vm::MicroVmConfig;

pub mod oci;
pub mod oracle;
pub mod registry;
pub mod run;
pub mod token;

/// Where the build script found `libkrunfw.so.5`, or `None` if it did not.
pub fn libkrunfw_at_build_time() -> Option<&'static str> {
    Some(env!("MONOCORE_BUILD_LIBKRUNFW")).filter(|p| !p.is_empty())
}

/// A minimal guest root filesystem in a temporary directory, built by
/// [`monocore::rootfs::populate_busybox_tree`] from Debian's static busybox.
/// Removed when dropped.
pub fn busybox_rootfs() -> Result<tempfile::TempDir, String> {
    let root = tempfile::Builder::new()
        .prefix("monocore-rootfs-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp rootfs: {e}"))?;
    populate_busybox_rootfs(root.path())?;
    Ok(root)
}

/// Fills the empty directory `root` as [`busybox_rootfs`] does.
pub fn populate_busybox_rootfs(root: &Path) -> Result<(), String> {
    let busybox = monocore::rootfs::find_busybox().map_err(|e| e.to_string())?;
    monocore::rootfs::populate_busybox_tree(root, &busybox).map_err(|e| chain(&e))
}

/// `error`'s message followed by each of its sources', `: `-separated.
pub fn chain(error: &dyn std::error::Error) -> String {
    monocore::ErrorChain(error).to_string()
}

/// A config for a busybox rootfs that runs `/bin/sh -c <script>`.
pub fn sh_config(root: &Path, script: &str) -> MicroVmConfig {
    let mut config = MicroVmConfig::new(root, 256);
    config.exec_path = Some("/bin/sh".into());
    config.args = vec!["-c".into(), script.into()];
    config
}

/// Prints the loud skip line the test policy asks for. It goes straight to
/// stderr, past the test harness's output capture, so it shows even when the
/// test passes.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

/// Set to `1` (as `.ci/run` does) to make a host that cannot boot a test
/// failure instead of a skip.
pub const REQUIRE_BOOT_ENV: &str = "MONOCORE_REQUIRE_BOOT";

/// Whether real-boot tests run on this host: `Ok(())` when
/// [`monocore::host::check`] finds a kernel that boots here (libkrunfw on
/// hardware KVM, the compat kernel on `kvm_pvm`), else `Err` with the
/// host check's blocker and its fix. There is no probe boot: where the host
/// check says a VM can boot, a VM that then fails to boot fails its test.
pub fn boot_gate() -> Result<(), String> {
    let host = monocore::host::check();
    match host.boot_blocker() {
        None => Ok(()),
        Some(problem) => Err(format!("{problem} (fix: {})", problem.fix())),
    }
}

/// Whether `REQUIRE_BOOT_ENV` is set to `1`.
pub fn boot_required() -> bool {
    std::env::var_os(REQUIRE_BOOT_ENV).is_some_and(|v| v == "1")
}

/// `test` cannot run here, for `reason`: with [`REQUIRE_BOOT_ENV`] set, a
/// test failure (panics); otherwise the loud `SKIPPED: <test>: <reason>`
/// line. Returns `false`, for `if !may_boot(..) { return; }`.
#[expect(
    clippy::panic,
    reason = "test support: with MONOCORE_REQUIRE_BOOT=1 a host that cannot run the test fails it"
)]
pub fn cannot_run(test: &str, reason: &str) -> bool {
    if boot_required() {
        panic!("{test}: cannot run on this host, and {REQUIRE_BOOT_ENV}=1: {reason}");
    }
    skip(test, reason);
    false
}

/// `true` when the real-boot test `test` may run; otherwise
/// [`cannot_run`] (a loud skip, or a failure with [`REQUIRE_BOOT_ENV`]).
pub fn may_boot(test: &str) -> bool {
    match boot_gate() {
        Ok(()) => true,
        Err(reason) => cannot_run(test, &format!("this host cannot boot a VM: {reason}")),
    }
}

/// `true` when `/dev/kvm` opens, which `spawn` checks before it starts the
/// helper; otherwise [`cannot_run`] (a loud skip, or a failure with
/// [`REQUIRE_BOOT_ENV`]).
pub fn kvm_usable(test: &str) -> bool {
    match monocore::host::check_kvm_limits().kvm {
        Ok(_) => true,
        Err(problem) => cannot_run(
            test,
            &format!("{problem} (spawn refuses to start a VM here)"),
        ),
    }
}

/// Whether this process's child `pid` has been reaped: no `/proc` entry,
/// or one that is no longer a child of this process (a reused pid). A
/// zombie child is not reaped.
pub fn is_reaped(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(_) => !live_children().iter().any(|(p, _)| *p == pid),
    }
}

/// Whether any process `pid` (not necessarily a child) has ended: no
/// `/proc` entry, or a zombie its parent has yet to reap.
pub fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat_state(&stat) == Some('Z'),
    }
}

/// Waits (at most `timeout`) until [`has_ended`]`(pid)`; whether it did.
pub fn wait_ended(pid: u32, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while !has_ended(pid) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The state letter of a `/proc/<pid>/stat` line (`pid (comm) S ppid …`;
/// comm may hold spaces or parentheses).
fn stat_state(stat: &str) -> Option<char> {
    stat.rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .and_then(|rest| rest.trim_start().chars().next())
}

/// Asserts that the VM of `pid`, with its run directories under `runs`,
/// left nothing behind: the helper reaped, no run directory left.
#[expect(
    clippy::panic,
    reason = "test support: a failed listing fails the test"
)]
pub fn assert_nothing_left(pid: u32, runs: &std::path::Path) {
    assert!(is_reaped(pid), "the VM helper {pid} was not reaped");
    let left: Vec<_> = std::fs::read_dir(runs)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", runs.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "run directories left behind: {left:?}");
}

/// The children of this process that still exist, zombies included (by
/// scanning `/proc/*/stat` for our pid as parent).
pub fn live_children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces or parens.
        let Some(after) = stat.rfind(')').and_then(|i| stat.get(i + 1..)) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(me) {
            children.push((pid, state));
        }
    }
    children
}

/// Runs `cmd` to its end: its exit code (-1 when a signal ended it),
/// stdout and stderr.
#[expect(
    clippy::panic,
    reason = "test support: a command that cannot start fails the test"
)]
pub fn output_of(cmd: &mut std::process::Command) -> (i32, String, String) {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Processes (zombies left out: their parent is about to reap them) whose
/// working directory is `dir`. A test runs the `monocore` command in a
/// directory of its own, and its VM helper inherits it, so whatever is
/// listed once the command has ended is an orphan.
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| stat_state(&s) == Some('Z'))
        })
        .collect()
}

/// [`processes_in`] once they are gone, or after 5 s, whatever is left.
pub fn wait_until_gone(dir: &Path) -> Vec<u32> {
    for _ in 0..100 {
        let left = processes_in(dir);
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    processes_in(dir)
}

/// A stand-in helper that never answers: a shell script that sleeps, for
/// testing timeouts and kills. Returns the script's path inside `dir`.
pub fn slow_helper(dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("slow-vmm");
    std::fs::write(&path, "#!/bin/sh\nexec /bin/sleep 300\n").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// The baseline of the process benchmarks: spawns `/bin/true` on the host
/// with `std::process` and waits for it, `iters` times; returns the total
/// time (for criterion's `iter_custom`).
pub fn time_host_true(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = std::time::Instant::now();
        let status = std::process::Command::new("/bin/true").status();
        total += start.elapsed();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("process baseline: /bin/true did not succeed");
        }
    }
    total
}
