//! A private containerd for the shim's tests: its own root, state dir and
//! sockets under a temporary directory, the shim on its `PATH`, started as
//! a child process and stopped (with everything it left) when dropped.
//! Also: busybox OCI image archives for `ctr image import` (`image`), the
//! scans that tell whether anything was left behind, and, for the CRI
//! tests, containerd with its CRI plugin on and a CRI client (`cri`).

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub mod cgroups;
pub mod cni;
pub mod cri;
pub mod cri_client;
pub mod cri_log;
pub mod cri_stream;
pub mod image;
pub mod kubelet;

pub use image::{ImageSpec, build_image, build_images};
// Each test binary uses some of these.
#[allow(unused_imports)]
pub use monocore_suite::{cannot_run, has_ended, may_boot, wait_ended};

/// The runtime name tests pass to `ctr run --runtime`.
pub const RUNTIME: &str = "io.containerd.monocore.v1";
/// The image the archive holds.
pub const IMAGE: &str = "localhost/monocore-busybox:test";
/// Far above a boot on the slowest host this runs on (~20 s under kvm_pvm,
/// more with other work on the machine).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// Where `scripts/setup.sh` unpacks forky's containerd 2.1.9 (`containerd`,
/// `ctr`, `containerd-shim-runc-v2`, in its `bin`), beside the system's 1.6
/// and on no one's `PATH`, unless `MONOCORE_CONTAINERD2_DIR` moves it.
pub const CONTAINERD2_DIR: &str = "/opt/monocore/containerd-2.1.9";

/// The directory of containerd 2.1.9's binaries (see [`CONTAINERD2_DIR`]).
pub fn containerd2_bin() -> PathBuf {
    std::env::var_os("MONOCORE_CONTAINERD2_DIR")
        .map_or_else(|| PathBuf::from(CONTAINERD2_DIR), PathBuf::from)
        .join("bin")
}

/// Which containerd a test starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerdVersion {
    /// Debian bookworm's containerd 1.6 (the `containerd` package, with
    /// runc): `containerd`, `ctr` and `containerd-shim-runc-v2` on `PATH`.
    V1_6,
    /// forky's containerd 2.1.9, from [`containerd2_bin`]; config version
    /// 3, the CRI plugin split in three.
    V2_1,
}

impl ContainerdVersion {
    /// The directory of this version's binaries, put first on containerd's
    /// `PATH` (after the shim's) so that it starts its own runc shim.
    fn bin_dir(self) -> Option<PathBuf> {
        match self {
            Self::V1_6 => None,
            Self::V2_1 => Some(containerd2_bin()),
        }
    }

    /// This version's `tool` (`containerd`, `ctr`).
    pub fn tool(self, tool: &str) -> PathBuf {
        self.bin_dir()
            .map_or_else(|| PathBuf::from(tool), |dir| dir.join(tool))
    }

    /// How this version's containerd starts its version string (as the
    /// CRI's `Version` gives it).
    pub fn release_prefix(self) -> &'static str {
        match self {
            Self::V1_6 => "1.6.",
            Self::V2_1 => "2.1.9",
        }
    }

    /// Why this version's `containerd`, `ctr` and runc shim cannot be
    /// run, if they cannot: one missing, or (for 2.1) not saying 2.1.9.
    fn blocker(self) -> Option<String> {
        let (install, expected) = match self {
            Self::V1_6 => ("scripts/setup.sh installs Debian's containerd", None),
            Self::V2_1 => (
                "scripts/setup.sh unpacks forky's containerd 2.1.9 there",
                Some("2.1.9"),
            ),
        };
        for (tool, arg) in [
            ("containerd", "--version"),
            ("ctr", "--version"),
            ("containerd-shim-runc-v2", "-v"),
        ] {
            let path = self.tool(tool);
            let out = Command::new(&path).arg(arg).stdin(Stdio::null()).output();
            let said = match out {
                Ok(out) if out.status.success() => {
                    String::from_utf8_lossy(&out.stdout).into_owned()
                }
                _ => return Some(format!("`{}` does not run ({install})", path.display())),
            };
            if let Some(expected) = expected {
                let says_it = said
                    .split_whitespace()
                    .any(|word| word.split(['+', '~']).next() == Some(expected));
                if !says_it {
                    return Some(format!(
                        "`{} {arg}` does not say {expected}: {said:?} ({install})",
                        path.display()
                    ));
                }
            }
        }
        None
    }
}

/// Why tests with containerd `version` cannot run here, if they cannot:
/// its `containerd`, `ctr` or runc shim missing (`scripts/setup.sh`
/// installs them), or not root (the shim mounts the snapshot).
pub fn containerd_blocker(version: ContainerdVersion) -> Option<String> {
    if let Some(reason) = version.blocker() {
        return Some(reason);
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Some("not root: the shim mounts the container's snapshot".to_owned());
    }
    None
}

/// `true` when containerd (1.6) tests can run; otherwise prints the loud
/// skip line (or, with `MONOCORE_REQUIRE_BOOT=1`, as CI sets, panics).
pub fn may_run(test: &str) -> bool {
    may_run_version(test, ContainerdVersion::V1_6)
}

/// [`may_run`] for containerd `version`.
pub fn may_run_version(test: &str, version: ContainerdVersion) -> bool {
    match containerd_blocker(version) {
        None => true,
        Some(reason) => cannot_run(test, &format!("containerd tests cannot run here: {reason}")),
    }
}

/// The shim binary under test.
pub fn shim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-monocore-v1"))
}

/// One containerd test at a time in a test binary: each boots VMs or
/// starts containerd on a small machine. The guard ends the turn.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running private containerd.
pub struct Containerd {
    version: ContainerdVersion,
    dir: tempfile::TempDir,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Containerd {
    /// Starts a containerd 1.6 with `env` added to its environment (and so
    /// to the shim's).
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with_config(ContainerdVersion::V1_6, env, config)
    }

    /// Starts containerd `version` with `env` added to its environment,
    /// and the config `config` returns for the temporary directory (which
    /// it may also fill with what that config names).
    pub fn start_with_config(
        version: ContainerdVersion,
        env: &[(&str, &str)],
        config: impl FnOnce(&Path) -> String,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("monocore-ctrd-")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        symlink(shim_binary(), bin.join("containerd-shim-monocore-v1")).unwrap();
        fs::write(dir.path().join("config.toml"), config(dir.path())).unwrap();
        // The VMs' run directories go under the test's directory, where the
        // test can check that none is left.
        let runs = dir.path().join("runs").to_str().unwrap().to_owned();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.push(("MONOCORE_SHIM_RUNS_DIR".to_owned(), runs));
        let mut containerd = Self {
            version,
            dir,
            child: None,
            env,
        };
        containerd.spawn();
        containerd
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let mut path = vec![dir.join("bin")];
        path.extend(self.version.bin_dir());
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(path).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("containerd.log"))
            .unwrap();
        let child = Command::new(self.version.tool("containerd"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .current_dir(dir)
            .env("PATH", path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The temporary directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Which containerd this is.
    pub fn version(&self) -> ContainerdVersion {
        self.version
    }

    /// The executable of the running containerd.
    pub fn executable(&self) -> PathBuf {
        let pid = self.child.as_ref().expect("containerd runs").id();
        fs::read_link(format!("/proc/{pid}/exe")).unwrap()
    }

    /// The executables of the shims this containerd runs (`containerd-shim-*`).
    pub fn shim_executables(&self) -> Vec<PathBuf> {
        processes_of(self.dir())
            .into_iter()
            .filter_map(|(pid, _, _)| fs::read_link(format!("/proc/{pid}/exe")).ok())
            .filter(|exe| {
                exe.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("containerd-shim-"))
            })
            .collect()
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr` against this containerd.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new(self.version.tool("ctr"))
            .arg("--address")
            .arg(self.dir().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts `ctr` against this containerd, its stdout and stderr to
    /// `output`.
    pub fn ctr_spawn(&self, args: &[&str], output: fs::File) -> Child {
        Command::new(self.version.tool("ctr"))
            .arg("--address")
            .arg(self.dir().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap()
    }

    /// Runs `ctr` and asserts that it succeeded; returns its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}{}\ncontainerd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last lines of containerd's log (the shim's log goes there too).
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Imports the busybox image.
    pub fn import_image(&self) {
        let archive = build_image(self.dir());
        self.ctr_ok(&["image", "import", archive.to_str().unwrap()]);
    }

    /// The tasks `ctr task ls` lists: (id, pid, status).
    pub fn tasks(&self) -> Vec<(String, u32, String)> {
        self.tasks_in("default")
    }

    /// The tasks `ctr task ls` lists in containerd namespace `namespace`.
    pub fn tasks_in(&self, namespace: &str) -> Vec<(String, u32, String)> {
        self.ctr_ok(&["--namespace", namespace, "task", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    /// The containers `ctr container ls` lists.
    pub fn containers(&self) -> Vec<String> {
        self.containers_in("default")
    }

    /// The containers `ctr container ls` lists in containerd namespace
    /// `namespace`.
    pub fn containers_in(&self, namespace: &str) -> Vec<String> {
        self.ctr_ok(&["--namespace", namespace, "container", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// Waits until task `id` has status `status`; returns its pid.
    pub fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, pid, _)) = self
                .tasks()
                .into_iter()
                .find(|(task, _, s)| task == id && s == status)
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} did not become {status} within {timeout:?}: {:?}\n{}",
                self.tasks(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills containerd with SIGKILL, as a crash would (its shims live on).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts containerd again on the same root, state and sockets.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops containerd (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: plain syscall on our own child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asserts that nothing of this containerd's tasks is left: no process
    /// started for it (containerd itself excepted while it runs), nor any
    /// mount under its directory.
    pub fn assert_nothing_left(&self) {
        let containerd = self.child.as_ref().map(Child::id);
        let left = || -> Vec<_> {
            processes_of(self.dir())
                .into_iter()
                .filter(|(pid, _, state)| Some(*pid) != containerd && *state != 'Z')
                .collect()
        };
        // A shim answers containerd's `shutdown` and then exits: give it
        // the moment that takes (bounded; a shim that stays fails).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !left().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = left();
        assert!(
            left.is_empty(),
            "processes left: {left:?}\n{}",
            self.log_tail()
        );
        let mounts = mounts_under(self.dir());
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        let runs: Vec<_> = fs::read_dir(self.dir().join("runs"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(runs.is_empty(), "VM run directories left: {runs:?}");
    }

    /// The socket the shim of task `id` serves on.
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        self.shim_socket_in("default", id)
    }

    /// The socket the shim of task `id` (of a pod's tasks: the sandbox's
    /// id) serves on in containerd namespace `namespace`.
    pub fn shim_socket_in(&self, namespace: &str, id: &str) -> PathBuf {
        let address = containerd_shim::socket_address(
            self.dir().join("containerd.sock").to_str().unwrap(),
            namespace,
            id,
        );
        PathBuf::from(address.trim_start_matches("unix://"))
    }

    /// Whether the shim of task `id` has left no socket.
    pub fn socket_gone(&self, id: &str) -> bool {
        !self.shim_socket(id).exists()
    }

    /// Asserts that the shim of task `id` left no socket.
    pub fn assert_socket_gone(&self, id: &str) {
        let path = self.shim_socket(id);
        assert!(
            !path.exists(),
            "the shim's socket {} is left",
            path.display()
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What containerd and the shim said, for the failure's reader.
            let log = self.log();
            let lines: Vec<&str> = log.lines().filter(|l| !l.contains("level=debug")).collect();
            eprintln!(
                "--- containerd's log (last 80 lines) ---\n{}",
                lines[lines.len().saturating_sub(80)..].join("\n")
            );
        }
        self.stop();
        // Whatever a failed test left: end it and take its mounts off, so
        // that no test leaks into the next (the test has failed already).
        let mut shims = Vec::new();
        for (pid, cmdline, _) in processes_of(self.dir()) {
            shims.extend(shim_task(&cmdline));
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: plain syscall; the pid was just found in /proc
                // with this test's directory in its command line or cwd.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // A shim killed here leaves its socket, which is not under the
        // test's directory (it is named after this containerd's address).
        for (namespace, id) in shims {
            let _ = fs::remove_file(self.shim_socket_in(&namespace, &id));
        }
        for mount in mounts_under(self.dir()).into_iter().rev() {
            let c = std::ffi::CString::new(mount).unwrap();
            // SAFETY: `c` is a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The containerd namespace and task id a shim's command line names
/// (`-namespace NS -id ID`), if it is a shim's.
fn shim_task(cmdline: &str) -> Option<(String, String)> {
    let args: Vec<&str> = cmdline.split_whitespace().collect();
    let value = |flag: &str| {
        args.windows(2)
            .find(|pair| pair[0] == flag)
            .map(|pair| pair[1].to_owned())
    };
    Some((value("-namespace")?, value("-id")?))
}

/// A containerd 1.6 config (version 2) with everything under `dir`. The CRI
/// plugin is off (no CNI, no pods here): `ctr` uses the runtime by name,
/// and containerd finds `containerd-shim-monocore-v1` on its `PATH`.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
"#
    )
}

/// Processes whose command line or working directory names `dir`: the
/// private containerd, its shims (`-address DIR/containerd.sock`) and their
/// VM helpers (which run in the bundle, under `DIR/state`). (pid, command
/// line, state).
pub fn processes_of(dir: &Path) -> Vec<(u32, String, char)> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmdline.contains(needle) || cwd.to_string_lossy().contains(needle) {
            let state = fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rfind(')')
                        .and_then(|i| s[i + 1..].trim_start().chars().next())
                })
                .unwrap_or('?');
            found.push((pid, cmdline, state));
        }
    }
    found
}

/// Mount points under `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = format!("{}/", dir.display());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&needle))
        .map(str::to_owned)
        .collect()
}
