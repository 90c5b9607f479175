//! Running a VM to its end, as the real-boot tests do, and a test HTTP
//! server on the host's 127.0.0.1 for the networking tests.

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use monocore::{
    MonocoreError,
    vm::{MicroVm, MicroVmConfig, SpawnOptions, VmExitStatus},
};

use crate::{assert_nothing_left, chain};

/// Far above a boot on the slowest host these run on (~20 s under kvm_pvm).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// What a finished VM left: its outcome and console.
pub struct Finished {
    /// How it ended.
    pub outcome: Result<VmExitStatus, MonocoreError>,
    /// Its console output.
    pub console: String,
}

impl Finished {
    /// Its exit code; a VM that did not run its command fails the test,
    /// with the error's chain and the console.
    #[expect(
        clippy::panic,
        reason = "test support: a VM that did not run its command fails the test"
    )]
    pub fn code(&self) -> Option<i32> {
        match &self.outcome {
            Ok(status) => status.code(),
            Err(e) => panic!(
                "the VM did not run its command: {}\nconsole:\n{}",
                chain(e),
                self.console
            ),
        }
    }

    /// Whether the console has `line` as a whole line.
    pub fn has_line(&self, line: &str) -> bool {
        self.console.lines().any(|l| l == line)
    }
}

/// Spawn options that capture the console and keep run directories in
/// `runs`.
pub fn options(runs: &Path) -> SpawnOptions {
    SpawnOptions::new().capture_console(true).runs_dir(runs)
}

/// Boots `config` (the test `test`), waits for it for at most
/// [`BOOT_TIMEOUT`], and checks that nothing is left: the helper reaped,
/// no run directory.
#[expect(
    clippy::panic,
    clippy::unwrap_used,
    reason = "test support: a VM that cannot start or end fails the test"
)]
pub fn run_to_end(test: &str, config: MicroVmConfig) -> Finished {
    let runs = tempfile::tempdir().unwrap();
    let mut handle = MicroVm::from_config(config)
        .unwrap()
        .spawn_with(&options(runs.path()))
        .unwrap();
    let pid = handle.pid();
    let outcome = handle
        .wait_timeout(BOOT_TIMEOUT)
        .transpose()
        .unwrap_or_else(|| panic!("{test}: the VM did not finish within {BOOT_TIMEOUT:?}"));
    let console = String::from_utf8_lossy(&handle.console_output()).into_owned();
    drop(handle);
    assert_nothing_left(pid, runs.path());
    Finished { outcome, console }
}

/// An HTTP server on the host's 127.0.0.1 that answers every request with
/// `body`, and counts the connections it accepted. It serves until the
/// test process ends.
pub struct HttpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl HttpServer {
    /// Starts one.
    #[expect(
        clippy::unwrap_used,
        reason = "test support: a server that cannot listen fails the test"
    )]
    pub fn start(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let _ = stream.read(&mut buf);
                    let _ = write!(
                        stream,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Self { port, accepted }
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
