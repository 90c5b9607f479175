//! [`Vm`]: a monocore [`VmHandle`] spawned idle, for `monocore.Sandbox`.

use std::{
    ffi::OsString,
    io::Write,
    os::fd::OwnedFd,
    path::PathBuf,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use monocore::{
    MonocoreError, MonocoreResult,
    config::EnvPair,
    error::ControlError,
    rootfs::RunRootfs,
    vm::{
        GuestCommand, GuestOutput, GuestSignaller, MicroVm, MicroVmConfig, SpawnOptions,
        VmExitStatus, VmHandle,
    },
};
use pyo3::{prelude::*, types::PyBytes};

use crate::{
    errors::{self, Partial},
    supervise::{Callbacks, Chunk, Stop, pump, supervise},
};

/// How long a boot may take before the sandbox gives up on it.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// A running VM and what it owns. Fields drop in order: the VM before its
/// root's copy.
#[derive(Debug)]
struct Inner {
    handle: VmHandle,
    _rootfs: Option<RunRootfs>,
}

/// A microVM, booted idle, that runs commands and moves files.
#[pyclass(module = "monocore._monocore", frozen)]
pub(crate) struct Vm {
    inner: Mutex<Option<Inner>>,
    /// The helper process, by pidfd: killed from any thread without the
    /// `inner` lock and without hitting a reused pid.
    pidfd: OwnedFd,
    pid: u32,
    /// The command running now, to stop it from another thread.
    current: Mutex<Option<GuestSignaller>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of a sandbox whose VM was killed or closed.
fn ended() -> MonocoreError {
    ControlError::VmEnded.into()
}

/// A supervised call's outcome as a Python result.
fn finish<T>(
    py: Python<'_>,
    supervised: crate::supervise::Supervised<MonocoreResult<T>>,
) -> PyResult<(T, Partial)> {
    if let Some(err) = supervised.python_error {
        return Err(err);
    }
    match supervised.result {
        Some(Ok(value)) => Ok((value, supervised.output)),
        Some(Err(error)) => Err(errors::to_py(py, error, supervised.output)),
        None => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "monocore: a worker thread panicked",
        )),
    }
}

impl Vm {
    fn stop(&self, what: Stop) {
        if let Some(signaller) = lock(&self.current).as_ref() {
            signaller.abort();
        }
        if what == Stop::Vm {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
        }
    }

    /// Runs `work` on the VM, supervised (see [`supervise`]); the VM is
    /// reaped and forgotten if it was stopped.
    fn with_vm<R: Send>(
        &self,
        py: Python<'_>,
        callbacks: &Callbacks,
        work: impl FnOnce(
            &mut Inner,
            &Mutex<Option<GuestSignaller>>,
            std::sync::mpsc::Sender<Chunk>,
        ) -> MonocoreResult<R>
        + Send,
    ) -> PyResult<(R, Partial)> {
        let supervised = py.detach(|| {
            let mut guard = lock(&self.inner);
            let supervised = match guard.as_mut() {
                Some(inner) => supervise(callbacks, &|what| self.stop(what), |tx| {
                    work(inner, &self.current, tx)
                }),
                None => crate::supervise::Supervised {
                    result: Some(Err(ended())),
                    output: Partial::default(),
                    python_error: None,
                    vm_stopped: false,
                },
            };
            *lock(&self.current) = None;
            if supervised.vm_stopped
                && let Some(mut inner) = guard.take()
            {
                let _ = inner.handle.kill();
            }
            supervised
        });
        finish(py, supervised)
    }
}

#[pymethods]
impl Vm {
    /// Boots a VM (idle: it runs nothing until asked) and waits until its
    /// guest agent answers. `root=None` is a private copy of the default
    /// busybox root. `helper` is the VM helper's command line (program,
    /// then arguments).
    #[new]
    #[pyo3(signature = (*, root, ram, vcpus, env, helper, time_to_live=None))]
    fn new(
        py: Python<'_>,
        root: Option<PathBuf>,
        ram: u32,
        vcpus: u8,
        env: Vec<(String, String)>,
        helper: Vec<OsString>,
        time_to_live: Option<f64>,
    ) -> PyResult<Self> {
        let ttl = time_to_live
            .map(Duration::try_from_secs_f64)
            .transpose()
            .map_err(|err| {
                pyo3::exceptions::PyValueError::new_err(format!("time_to_live: {err}"))
            })?;
        let (program, args) = helper
            .split_first()
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("helper: empty command"))?;
        let spawned = py.detach(|| -> MonocoreResult<Inner> {
            let (root, rootfs) = match root {
                Some(root) => (root, None),
                None => {
                    let copy = RunRootfs::busybox()?;
                    (copy.path().to_path_buf(), Some(copy))
                }
            };
            let mut config = MicroVmConfig::new(root, ram);
            config.num_vcpus = vcpus;
            config.env = env.into_iter().map(|(k, v)| EnvPair::new(k, v)).collect();
            let vm = MicroVm::from_config(config)?;
            let mut options = SpawnOptions::new()
                .idle(true)
                .capture_console(true)
                .helper_path(program)
                .helper_args(args);
            if let Some(ttl) = ttl {
                options = options.time_to_live(ttl);
            }
            let handle = vm.spawn_with(&options)?;
            Ok(Inner {
                handle,
                _rootfs: rootfs,
            })
        });
        let inner = spawned.map_err(|error| errors::to_py(py, error, Partial::default()))?;
        let pid = inner.handle.pid();
        // The helper is our child and not reaped yet, so the pid is its own.
        let pidfd = rustix::process::Pid::from_raw(pid.try_into().unwrap_or(i32::MAX))
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the helper has no pid"))
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    .map_err(|err| PyErr::from(std::io::Error::from(err)))
            })?;
        let vm = Vm {
            inner: Mutex::new(Some(inner)),
            pidfd,
            pid,
            current: Mutex::new(None),
        };
        vm.with_vm(py, &Callbacks::default(), |inner, _, _| {
            inner.handle.wait_ready(BOOT_TIMEOUT).map_err(|error| {
                // A VM that ended says why (a boot failure) when reaped.
                match inner.handle.wait_timeout(Duration::from_secs(5)) {
                    Err(reason) => reason,
                    Ok(_) => error,
                }
            })
        })?;
        Ok(vm)
    }

    /// The VM helper's process id on the host.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// Runs `argv` in the VM and waits for it: `(exit_code, signal, stdout,
    /// stderr)`, with the output also passed, as it comes, to `on_stdout`
    /// and `on_stderr` (`bytes`).
    #[pyo3(signature = (argv, *, timeout=None, env=Vec::new(), cwd=None, stdin=None, on_stdout=None, on_stderr=None))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn run(
        &self,
        py: Python<'_>,
        argv: Vec<OsString>,
        timeout: Option<f64>,
        env: Vec<(OsString, OsString)>,
        cwd: Option<OsString>,
        stdin: Option<Vec<u8>>,
        on_stdout: Option<Py<PyAny>>,
        on_stderr: Option<Py<PyAny>>,
    ) -> PyResult<(Option<i32>, Option<i32>, Py<PyBytes>, Py<PyBytes>)> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("an empty command"))?;
        let mut command = GuestCommand::new(program)
            .args(args)
            .stdout(GuestOutput::Piped)
            .stderr(GuestOutput::Piped);
        for (name, value) in env {
            command = command.env(name, value);
        }
        if let Some(cwd) = cwd {
            command = command.current_dir(cwd);
        }
        if let Some(timeout) = timeout {
            let timeout = Duration::try_from_secs_f64(timeout).map_err(|err| {
                pyo3::exceptions::PyValueError::new_err(format!("timeout: {err}"))
            })?;
            command = command.timeout(timeout);
        }
        let callbacks = Callbacks {
            on_stdout,
            on_stderr,
        };
        let (status, output) = self.with_vm(py, &callbacks, move |inner, current, tx| {
            run_command(&mut inner.handle, current, command, stdin, tx)
        })?;
        Ok((
            status.code(),
            status.signal(),
            PyBytes::new(py, &output.stdout).unbind(),
            PyBytes::new(py, &output.stderr).unbind(),
        ))
    }

    /// Writes `data` to the guest file `path` with `mode`, replacing it.
    fn write_file(&self, py: Python<'_>, path: PathBuf, data: Vec<u8>, mode: u32) -> PyResult<()> {
        self.with_vm(py, &Callbacks::default(), move |inner, _, _| {
            inner.handle.files().write_file(&path, &data, mode)
        })
        .map(drop)
    }

    /// The bytes of the guest file `path`.
    fn read_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<Py<PyBytes>> {
        let (bytes, _) = self.with_vm(py, &Callbacks::default(), move |inner, _, _| {
            inner.handle.files().read_file(&path)
        })?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    /// Kills the VM (and the command running in it) and removes its files.
    /// Killing a VM that has ended does nothing.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        self.stop(Stop::Vm);
        let killed = py.detach(|| match lock(&self.inner).take() {
            Some(mut inner) => inner.handle.kill(),
            None => Ok(()),
        });
        killed.map_err(|error| errors::to_py(py, error, Partial::default()))
    }

    /// Whether the VM is still there (not killed).
    #[getter]
    fn alive(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.inner).is_some())
    }
}

/// Runs `command` in `handle`'s VM, sending its output on `tx`, and waits
/// for it.
fn run_command(
    handle: &mut VmHandle,
    current: &Mutex<Option<GuestSignaller>>,
    command: GuestCommand,
    stdin: Option<Vec<u8>>,
    tx: std::sync::mpsc::Sender<Chunk>,
) -> MonocoreResult<VmExitStatus> {
    let mut process = handle.exec(command)?;
    *lock(current) = Some(process.signaller());
    let input = process.take_stdin();
    let stdout = process.take_stdout();
    let stderr = process.take_stderr();
    std::thread::scope(|scope| {
        if let (Some(data), Some(mut input)) = (stdin, input) {
            // Dropped at the end: the command reads end of file.
            scope.spawn(move || {
                let _ = input.write_all(&data);
            });
        }
        if let Some(stdout) = stdout {
            let tx = tx.clone();
            scope.spawn(move || pump(stdout, tx, Chunk::Stdout));
        }
        if let Some(stderr) = stderr {
            let tx = tx.clone();
            scope.spawn(move || pump(stderr, tx, Chunk::Stderr));
        }
        drop(tx);
        process.wait()
    })
}
