//! An `exec` process in a pod container (`ExecSync`, `kubectl exec`): run
//! by the pod VM's agent in the container's mount namespace, with or
//! without a terminal.

use std::{
    fs::File,
    io::{Read, Write},
    sync::{Arc, Mutex},
};

use containerd_shim::api::ExecProcessRequest;
use monocore::vm::GuestStdin;
use serde_json::Value;

use super::{
    lifecycle::{Lifecycle, Stage},
    member::{Member, guest_command},
    process::{Outputs, PodProcess},
};
use crate::{
    container::{Status, StdioPaths},
    error::ShimError,
    events::Events,
    exit::Exit,
    spec, stdio,
};

/// A terminal's size until containerd resizes it.
const DEFAULT_TTY: (u16, u16) = (24, 80);

/// An exec process made, not started.
#[derive(Debug)]
struct Ready {
    exec: spec::ExecProcess,
    outputs: Outputs,
    stdin: Option<File>,
}

/// An exec process.
#[derive(Debug)]
pub struct Exec {
    /// Its exec id.
    pub exec_id: String,
    /// Its stream paths.
    pub stdio: StdioPaths,
    lifecycle: Lifecycle<Box<Ready>>,
    /// The stdin FIFO's write end this shim holds until `CloseIO`.
    stdin_keeper: Mutex<Option<File>>,
    events: Events,
}

/// The process spec of an exec request: JSON in a protobuf `Any`.
fn process_spec(request: &ExecProcessRequest) -> Result<Value, ShimError> {
    let bytes = request
        .spec
        .as_ref()
        .map_or(&[][..], |any| any.value.as_slice());
    serde_json::from_slice(bytes).map_err(|source| {
        ShimError::Spec(spec::SpecError::Parse {
            path: format!("exec {} process", request.exec_id).into(),
            source,
        })
    })
}

/// Copies the stdin FIFO into the process's input; end of input when the
/// FIFO has no writer left.
fn forward_stdin(mut from: File, mut to: GuestStdin) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Some(chunk) = buf.get(..n) else { return };
                if to.write_all(chunk).is_err() {
                    return;
                }
            }
        }
    }
}

impl Exec {
    /// `exec`: maps the process and opens its streams, in `member`.
    pub fn create(
        request: &ExecProcessRequest,
        member: &Member,
        events: Events,
    ) -> Result<Self, ShimError> {
        let process = process_spec(request)?;
        let exec =
            spec::map_exec(&process, &member.bundle.join("rootfs")).map_err(ShimError::Spec)?;
        for (at, reason) in exec.notes.entries() {
            containerd_shim::info!(
                "{}/{}: process.{at}: accepted, not applied: {reason}",
                member.id,
                request.exec_id
            );
        }
        let terminal = request.terminal || exec.pod.terminal;
        let input = stdio::open_input(&request.stdin)?;
        let (stdin, keeper) = input.map_or((None, None), |(r, k)| (Some(r), Some(k)));
        let outputs = Outputs {
            stdout: Some(stdio::open_output("stdout", &request.stdout)?),
            // With a terminal, everything arrives on stdout.
            stderr: if terminal {
                None
            } else {
                Some(stdio::open_output("stderr", &request.stderr)?)
            },
        };
        let mut exec = exec;
        exec.pod.terminal = terminal;
        Ok(Self {
            exec_id: request.exec_id.clone(),
            stdio: StdioPaths {
                stdin: request.stdin.clone(),
                stdout: request.stdout.clone(),
                stderr: request.stderr.clone(),
            },
            lifecycle: Lifecycle::new(Box::new(Ready {
                exec,
                outputs,
                stdin,
            })),
            stdin_keeper: Mutex::new(keeper),
            events,
        })
    }

    /// `start`: runs it in `member`'s mount namespace.
    pub fn start(self: &Arc<Self>, member: &Member) -> Result<u32, ShimError> {
        let mut stage = self.lifecycle.lock();
        let Some(ready) = Lifecycle::take_ready(&mut stage) else {
            return Err(ShimError::State {
                id: self.exec_id.clone(),
                state: "started",
                action: "start",
            });
        };
        let launched = self.launch(member, *ready);
        let next = match &launched {
            Ok(process) => Stage::Running(Arc::clone(process)),
            Err(_) => Stage::Stopped(Exit::failed(member.pod_vm().pid())),
        };
        self.lifecycle.set(&mut stage, next);
        launched.map(|process| process.pid())
    }

    /// Starts the process and watches it.
    fn launch(
        self: &Arc<Self>,
        member: &Member,
        ready: Ready,
    ) -> Result<Arc<PodProcess>, ShimError> {
        let Ready {
            exec,
            outputs,
            stdin,
        } = ready;
        let tty = exec.pod.terminal.then_some(DEFAULT_TTY);
        let command = guest_command(&exec.config, &exec.pod.user, tty).in_container(&member.id);
        let mut process = member
            .pod_vm()
            .exec(command)
            .map_err(ShimError::GuestStart)?;
        if let (Some(from), Some(to)) = (stdin, process.take_stdin()) {
            std::thread::Builder::new()
                .name("pod-stdin".into())
                .spawn(move || forward_stdin(from, to))
                .map_err(ShimError::Thread)?;
        }
        let name = format!("{}/{}", member.id, self.exec_id);
        let (id, exec_id, events) = (member.id.clone(), self.exec_id.clone(), self.events.clone());
        let this = Arc::clone(self);
        PodProcess::watch(name, member.pod_vm().pid(), process, outputs, move |exit| {
            let mut stage = this.lifecycle.lock();
            this.lifecycle.set(&mut stage, Stage::Stopped(exit));
            drop(stage);
            events.exec_exited(&id, &exec_id, exit);
        })
        .map_err(ShimError::Thread)
    }

    /// Where it is.
    pub fn status(&self) -> Status {
        self.lifecycle.status()
    }

    /// `wait`: blocks until it has started and ended.
    pub fn wait(&self) -> Exit {
        self.lifecycle.wait()
    }

    /// `kill`: the signal goes to the process in the guest.
    pub fn kill(&self, signal: u32) -> Result<(), ShimError> {
        let signo = i32::try_from(signal).map_err(|_| ShimError::Signal(signal))?;
        match &*self.lifecycle.lock() {
            Stage::Running(process) => process.signal(signo).map_err(ShimError::Spawn),
            _ => Err(ShimError::Finished(self.exec_id.clone())),
        }
    }

    /// `resize_pty`.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), ShimError> {
        match &*self.lifecycle.lock() {
            Stage::Running(process) => process.resize(rows, cols).map_err(ShimError::Spawn),
            _ => Ok(()),
        }
    }

    /// `close_io`: containerd has written all of stdin.
    pub fn close_stdin(&self) {
        self.stdin_keeper
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }
}
