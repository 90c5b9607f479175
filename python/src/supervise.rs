//! Waiting without the GIL, and still hearing Ctrl-C.
//!
//! A blocking monocore call (a boot, a command, a file transfer) runs on a
//! thread of its own ([`supervise`]'s `work`), while the calling thread,
//! which has released the GIL, passes the command's output to the Python
//! callbacks as it comes and checks for signals (`Python::check_signals`)
//! every [`POLL`]. A KeyboardInterrupt (or any exception a signal handler
//! raises) stops the VM: the work then ends at once, and the exception is
//! raised. An exception raised by a callback stops only the command.

use std::{
    sync::mpsc::{self, RecvTimeoutError, Sender},
    time::{Duration, Instant},
};

use pyo3::{exceptions::PyKeyboardInterrupt, prelude::*, types::PyBytes};

use crate::errors::Partial;

/// How often signals are checked while waiting.
const POLL: Duration = Duration::from_millis(50);

/// A piece of a command's output.
#[derive(Debug)]
pub(crate) enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// What to stop when the wait is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The running command (a callback failed).
    Command,
    /// The whole VM (Ctrl-C).
    Vm,
}

/// The Python callables that receive a command's output (as `bytes`).
#[derive(Debug, Default)]
pub(crate) struct Callbacks {
    pub(crate) on_stdout: Option<Py<PyAny>>,
    pub(crate) on_stderr: Option<Py<PyAny>>,
}

/// How a supervised call ended.
#[derive(Debug)]
pub(crate) struct Supervised<R> {
    /// What `work` returned (`None` if it panicked).
    pub(crate) result: Option<R>,
    /// The output it sent.
    pub(crate) output: Partial,
    /// The exception that stopped it: a signal's or a callback's.
    pub(crate) python_error: Option<PyErr>,
    /// Whether the VM was stopped.
    pub(crate) vm_stopped: bool,
}

/// Runs `work` on a thread of its own and waits for it (see the module
/// docs). Call it without the GIL (inside `Python::detach`); `stop` ends
/// the command or the VM, so that `work` returns.
pub(crate) fn supervise<R: Send>(
    callbacks: &Callbacks,
    stop: &dyn Fn(Stop),
    work: impl FnOnce(Sender<Chunk>) -> R + Send,
) -> Supervised<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || work(tx));
        let mut output = Partial::default();
        let mut python_error: Option<PyErr> = None;
        let mut vm_stopped = false;
        let mut checked = Instant::now();
        loop {
            match rx.recv_timeout(POLL) {
                Ok(chunk) => {
                    let (buffer, callback, bytes) = match chunk {
                        Chunk::Stdout(bytes) => (&mut output.stdout, &callbacks.on_stdout, bytes),
                        Chunk::Stderr(bytes) => (&mut output.stderr, &callbacks.on_stderr, bytes),
                    };
                    buffer.extend_from_slice(&bytes);
                    if let (Some(callback), None) = (callback, &python_error) {
                        let called = Python::attach(|py| {
                            callback
                                .call1(py, (PyBytes::new(py, &bytes),))
                                .map(drop)
                                .map_err(|err| {
                                    let interrupt = err.is_instance_of::<PyKeyboardInterrupt>(py);
                                    (err, interrupt)
                                })
                        });
                        if let Err((err, interrupt)) = called {
                            let what = if interrupt { Stop::Vm } else { Stop::Command };
                            stop(what);
                            vm_stopped |= interrupt;
                            python_error = Some(err);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !vm_stopped && checked.elapsed() >= POLL {
                checked = Instant::now();
                if let Err(err) = Python::attach(|py| py.check_signals()) {
                    stop(Stop::Vm);
                    vm_stopped = true;
                    python_error.get_or_insert(err);
                }
            }
        }
        Supervised {
            result: worker.join().ok(),
            output,
            python_error,
            vm_stopped,
        }
    })
}

/// Sends what `file` gives, in chunks made by `wrap`, until its end (or
/// until nobody listens).
pub(crate) fn pump(mut file: std::fs::File, tx: Sender<Chunk>, wrap: fn(Vec<u8>) -> Chunk) {
    use std::io::Read;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                let chunk = buffer.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
                if tx.send(wrap(chunk)).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
