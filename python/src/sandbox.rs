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
    config::PathPair,
    error::ControlError,
    vm::{CopySummary, GuestCommand, GuestOutput, GuestSignaller, VmExitStatus},
};
use pyo3::{
    prelude::*,
    types::{PyBytes, PyDict},
};

use crate::{
    boot::{BOOT_TIMEOUT, Defaults, RootSource, Shape, boot},
    errors::{self, Partial},
    machine::Machine,
    supervise::{Callbacks, Chunk, Stop, pump, supervise},
};

/// A microVM, booted idle, that runs commands and moves files.
#[pyclass(module = "monocore._monocore", frozen)]
pub(crate) struct Vm {
    inner: Mutex<Option<Machine>>,
    /// The helper process, by pidfd: killed from any thread without the
    /// `inner` lock and without hitting a reused pid.
    pidfd: OwnedFd,
    pid: u32,
    /// The command running now, to stop it from another thread.
    current: Mutex<Option<GuestSignaller>>,
    /// The image's run defaults (none for other roots).
    defaults: Defaults,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of a sandbox whose VM was killed or closed.
fn ended() -> MonocoreError {
    ControlError::VmEnded.into()
}

/// A supervised call's outcome as a Python result.
pub(crate) fn finish<T>(
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
            &mut Machine,
            &Mutex<Option<GuestSignaller>>,
            std::sync::mpsc::Sender<Chunk>,
        ) -> MonocoreResult<R>
        + Send,
    ) -> PyResult<(R, Partial)> {
        let supervised = py.detach(|| {
            let mut guard = lock(&self.inner);
            let supervised = match guard.as_mut() {
                Some(machine) => supervise(callbacks, &|what| self.stop(what), |tx| {
                    work(machine, &self.current, tx)
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
                && let Some(mut machine) = guard.take()
            {
                let _ = machine.kill();
            }
            supervised
        });
        finish(py, supervised)
    }
}

#[pymethods]
impl Vm {
    /// Boots a VM (idle: it runs nothing until asked) and waits until its
    /// guest agent answers. Its root is `root`, or the image `image`
    /// (pulled into `image_cache`, default monocore's), or else a private
    /// copy of the default busybox root. `volumes` are `host:guest` pairs
    /// (the config's `mapped_dirs`), `network` its `net`. `helper` is the
    /// VM helper's command line (program, then arguments).
    #[new]
    #[pyo3(signature = (*, root, image, image_cache, ram, vcpus, env, volumes, network, helper, time_to_live=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        root: Option<PathBuf>,
        image: Option<String>,
        image_cache: Option<PathBuf>,
        ram: u32,
        vcpus: u8,
        env: Vec<(String, String)>,
        volumes: Vec<String>,
        network: bool,
        helper: Vec<OsString>,
        time_to_live: Option<f64>,
    ) -> PyResult<Self> {
        let volumes = volumes
            .iter()
            .enumerate()
            .map(|(index, pair)| {
                pair.parse::<PathPair>()
                    .map_err(|error| errors::located(py, error, "mapped_dirs", index))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let time_to_live = time_to_live
            .map(|ttl| seconds("time_to_live", ttl))
            .transpose()?;
        if helper.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "helper: empty command",
            ));
        }
        let source = match (root, image) {
            (Some(_), Some(_)) => {
                return Err(errors::config_error(
                    py,
                    "image",
                    "give a root or an image, not both",
                ));
            }
            (Some(dir), None) => RootSource::Dir(dir),
            (None, Some(reference)) => RootSource::Image {
                reference,
                cache_dir: image_cache,
            },
            (None, None) => RootSource::Busybox,
        };
        let shape = Shape {
            ram,
            vcpus,
            env,
            volumes,
            network,
            helper,
            time_to_live,
        };
        let booted = py.detach(|| boot(source, shape));
        let (machine, defaults) =
            booted.map_err(|error| errors::to_py(py, error, Partial::default()))?;
        let vm = Vm::adopt(machine, defaults)?;
        vm.with_vm(py, &Callbacks::default(), |machine, _, _| {
            machine.wait_ready(BOOT_TIMEOUT)
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
            command = command.timeout(seconds("timeout", timeout)?);
        }
        let callbacks = Callbacks {
            on_stdout,
            on_stderr,
        };
        let (status, output) = self.with_vm(py, &callbacks, move |machine, current, tx| {
            run_command(machine, current, command, stdin, tx)
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
        self.with_vm(py, &Callbacks::default(), move |machine, _, _| {
            machine.files().write_file(&path, &data, mode)
        })
        .map(drop)
    }

    /// The bytes of the guest file `path`; with `max_bytes`, a larger file
    /// is an error (default: the library's bound, 64 MiB).
    #[pyo3(signature = (path, max_bytes=None))]
    fn read_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        max_bytes: Option<u64>,
    ) -> PyResult<Py<PyBytes>> {
        let (bytes, _) = self.with_vm(py, &Callbacks::default(), move |machine, _, _| {
            let mut files = machine.files();
            match max_bytes {
                Some(max) => files.read_file_max(&path, max),
                None => files.read_file(&path),
            }
        })?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    /// Copies the host file or tree `src` to the guest path `dst`: a dict
    /// of what was copied (`files`, `dirs`, `symlinks`, `bytes`).
    fn copy_in(&self, py: Python<'_>, src: PathBuf, dst: PathBuf) -> PyResult<Py<PyDict>> {
        let (summary, _) = self.with_vm(py, &Callbacks::default(), move |machine, _, _| {
            machine.files().copy_in(&src, &dst)
        })?;
        summary_dict(py, &summary)
    }

    /// Copies the guest file or tree `src` to the host path `dst` (as
    /// [`copy_in`](Self::copy_in) reports it).
    fn copy_out(&self, py: Python<'_>, src: PathBuf, dst: PathBuf) -> PyResult<Py<PyDict>> {
        let (summary, _) = self.with_vm(py, &Callbacks::default(), move |machine, _, _| {
            machine.files().copy_out(&src, &dst)
        })?;
        summary_dict(py, &summary)
    }

    /// Stops the command running now, if any (as a failed callback does);
    /// the sandbox stays.
    fn abort(&self) {
        self.stop(Stop::Command);
    }

    /// Kills the VM (and the command running in it) and removes its files.
    /// Killing a VM that has ended does nothing.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        self.stop(Stop::Vm);
        let killed = py.detach(|| match lock(&self.inner).take() {
            Some(mut machine) => machine.kill(),
            None => Ok(()),
        });
        killed.map_err(|error| errors::to_py(py, error, Partial::default()))
    }

    /// Whether the VM is still there (not killed).
    #[getter]
    fn alive(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.inner).is_some())
    }

    /// The image's `Env`, as `(name, value)` pairs (empty for other
    /// roots): the defaults of every command.
    #[getter]
    fn default_env(&self) -> Vec<(String, String)> {
        self.defaults.env.clone()
    }

    /// The image's `WorkingDir`, if it has one: the default directory of
    /// every command.
    #[getter]
    fn default_cwd(&self) -> Option<String> {
        self.defaults.cwd.clone()
    }
}

impl Vm {
    /// A sandbox for `machine`, which this process spawned and has not
    /// reaped.
    pub(crate) fn adopt(machine: Machine, defaults: Defaults) -> PyResult<Self> {
        let pid = machine.pid();
        // The helper is our child and not reaped yet, so the pid is its own.
        let pidfd = rustix::process::Pid::from_raw(pid.try_into().unwrap_or(i32::MAX))
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the helper has no pid"))
            .and_then(|pid| {
                rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    .map_err(|err| PyErr::from(std::io::Error::from(err)))
            });
        let pidfd = match pidfd {
            Ok(pidfd) => pidfd,
            Err(err) => {
                let mut machine = machine;
                let _ = machine.kill();
                return Err(err);
            }
        };
        Ok(Vm {
            inner: Mutex::new(Some(machine)),
            pidfd,
            pid,
            current: Mutex::new(None),
            defaults,
        })
    }
}

/// `value` seconds as a duration; a negative, NaN or too large value is a
/// `ValueError` naming `what`.
pub(crate) fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|err| pyo3::exceptions::PyValueError::new_err(format!("{what}: {value}: {err}")))
}

/// A copy's summary as a Python dict.
fn summary_dict(py: Python<'_>, summary: &CopySummary) -> PyResult<Py<PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("files", summary.files)?;
    dict.set_item("dirs", summary.dirs)?;
    dict.set_item("symlinks", summary.symlinks)?;
    dict.set_item("bytes", summary.bytes)?;
    Ok(dict.unbind())
}

/// Runs `command` in `machine`, sending its output on `tx`, and waits
/// for it.
fn run_command(
    machine: &mut Machine,
    current: &Mutex<Option<GuestSignaller>>,
    command: GuestCommand,
    stdin: Option<Vec<u8>>,
    tx: std::sync::mpsc::Sender<Chunk>,
) -> MonocoreResult<VmExitStatus> {
    let mut process = machine.exec(command)?;
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
