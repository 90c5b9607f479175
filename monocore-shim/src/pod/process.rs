//! A process of a pod container in the pod's VM (its main process or an
//! exec), from its start to its exit: its output copied into containerd's
//! FIFOs, its exit recorded and announced.

use std::{
    fs::File,
    io::{Read, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    time::SystemTime,
};

use containerd_shim::{error, info};
use monocore::vm::{GuestProcess, GuestSignaller};

use crate::exit::{Exit, exit_status};

/// The status of a process whose pod VM ended under it: as if killed.
pub const EXIT_VM_ENDED: u32 = 128 + 9;

/// Where a process's output goes: containerd's FIFOs (or nowhere).
#[derive(Debug, Default)]
pub struct Outputs {
    /// The stdout FIFO.
    pub stdout: Option<File>,
    /// The stderr FIFO.
    pub stderr: Option<File>,
}

/// A started process.
#[derive(Debug)]
pub struct PodProcess {
    /// Its name in the logs (`<container>` or `<container>/<exec>`).
    name: String,
    /// The pid reported to containerd (the VM's helper: the guest's pids
    /// mean nothing on the host).
    pid: u32,
    signaller: GuestSignaller,
    exit: Mutex<Option<Exit>>,
    ended: Condvar,
}

/// Copies everything `from` gives into `to`, until either ends.
fn copy(name: String, mut from: File, mut to: File) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(chunk) = buf.get(..n) else { return };
        if let Err(e) = to.write_all(chunk) {
            // Nobody reads the FIFO any more: the rest is dropped.
            info!("{name}: output dropped: {e}");
            return;
        }
    }
}

impl PodProcess {
    /// Watches `process`, which runs as `name` in the VM whose helper is
    /// `pid`, copying its output into `outputs`; `on_exit` is called once
    /// it has ended, after its output was copied.
    pub fn watch(
        name: String,
        pid: u32,
        mut process: GuestProcess,
        outputs: Outputs,
        on_exit: impl FnOnce(Exit) + Send + 'static,
    ) -> std::io::Result<Arc<Self>> {
        let this = Arc::new(Self {
            signaller: process.signaller(),
            name,
            pid,
            exit: Mutex::new(None),
            ended: Condvar::new(),
        });
        let mut copiers = Vec::new();
        for (from, to) in [
            (process.take_stdout(), outputs.stdout),
            (process.take_stderr(), outputs.stderr),
        ] {
            if let (Some(from), Some(to)) = (from, to) {
                let name = this.name.clone();
                copiers.push(
                    std::thread::Builder::new()
                        .name("pod-output".into())
                        .spawn(move || copy(name, from, to))?,
                );
            }
        }
        let watcher = Arc::clone(&this);
        std::thread::Builder::new()
            .name("pod-process".into())
            .spawn(move || {
                let status = match process.wait() {
                    Ok(status) => exit_status(status),
                    // The agent's connection ended without an exit: the
                    // pod's VM ended (or was killed) under it.
                    Err(e) => {
                        error!("{}: lost: {}", watcher.name, crate::error::chain(&e));
                        EXIT_VM_ENDED
                    }
                };
                drop(process);
                for copier in copiers {
                    let _ = copier.join();
                }
                let exit = Exit {
                    pid: watcher.pid,
                    status,
                    at: SystemTime::now(),
                };
                info!("{}: exited with status {status}", watcher.name);
                *watcher.lock() = Some(exit);
                watcher.ended.notify_all();
                on_exit(exit);
            })?;
        Ok(this)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Exit>> {
        self.exit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pid reported to containerd.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How it ended, if it has.
    pub fn exit(&self) -> Option<Exit> {
        *self.lock()
    }

    /// Blocks until it has ended.
    pub fn wait(&self) -> Exit {
        let mut exit = self.lock();
        loop {
            if let Some(exit) = *exit {
                return exit;
            }
            exit = self
                .ended
                .wait(exit)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Resizes its terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), monocore::MonocoreError> {
        if self.exit().is_some() {
            return Ok(());
        }
        self.signaller.resize(rows, cols)
    }

    /// Sends it `signal` (in the guest: any signal can be delivered to a
    /// pod container's process). A process that has ended is not an error.
    pub fn signal(&self, signal: i32) -> Result<(), monocore::MonocoreError> {
        if self.exit().is_some() {
            return Ok(());
        }
        self.signaller.signal(signal)
    }
}
