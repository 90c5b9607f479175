//! Helpers shared by monocore's integration tests and benchmarks (and,
//! later, the CLI's tests): a busybox root filesystem, the probe boot that
//! decides whether real-boot tests can run, and loud skip reporting.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use monocore::vm::{MicroVm, MicroVmConfig, SpawnOptions};

pub mod oracle;

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
    monocore::rootfs::populate_busybox_tree(root, &busybox).map_err(|e| e.to_string())
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

/// Boots `/bin/true` in a busybox VM with `helper`. `Ok(())` means real
/// boot tests can run on this host; `Err` gives the reason (the host
/// check's blocker and fix first, then what the probe saw).
pub fn probe_boot(helper: &Path) -> Result<(), String> {
    let host = monocore::host::check();
    let blocker = host
        .boot_blocker()
        .map(|p| format!("{p} (fix: {})", p.fix()));
    let probe = (|| -> Result<(), String> {
        let root = busybox_rootfs()?;
        let mut config = MicroVmConfig::new(root.path(), 128);
        config.exec_path = Some("/bin/true".into());
        let vm = MicroVm::from_config(config).map_err(|e| e.to_string())?;
        let mut handle = vm
            .spawn_with(
                &SpawnOptions::new()
                    .capture_console(true)
                    .helper_path(helper),
            )
            .map_err(|e| e.to_string())?;
        match handle.wait_timeout(Duration::from_secs(60)) {
            Ok(Some(status)) if status.success() => Ok(()),
            Ok(Some(status)) => Err(format!("probe VM ended: {status}")),
            Ok(None) => Err("probe VM did not finish within 60 s".into()),
            Err(e) => Err(format!("probe boot failed: {e}")),
        }
    })();
    match (probe, blocker) {
        (Ok(()), _) => Ok(()),
        (Err(probe), Some(blocker)) => Err(format!("{blocker}; {probe}")),
        (Err(probe), None) => Err(probe),
    }
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
