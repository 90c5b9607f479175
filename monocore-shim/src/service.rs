//! The task service (TTRPC) that the long-running shim process serves.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use containerd_shim::{self as shim, ExitSignal, TtrpcContext, TtrpcResult, api, info};
use monocore::kernel::KernelChoice;

use crate::{
    container::{Container, Status},
    error::ShimError,
    events::{Events, timestamp},
    exit::Exit,
    pod::{
        kind::{self, TaskKind},
        member::Member,
    },
    spec::{self, Role},
    task::Task,
};

/// The environment variable that names an ELF kernel to boot instead of
/// the one monocore picks (`KernelChoice::Auto`).
pub const KERNEL_ENV: &str = "MONOCORE_SHIM_KERNEL";

/// The task service.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    events: Events,
    kernel: KernelChoice,
    containers: Mutex<HashMap<String, Task>>,
    socket: PathBuf,
    exit: Arc<ExitSignal>,
}

impl Service {
    /// A service that sends events to containerd's TTRPC `address` for
    /// `namespace`, and ends the shim through `exit`, removing its `socket`.
    pub fn new(address: String, namespace: String, socket: PathBuf, exit: Arc<ExitSignal>) -> Self {
        let kernel = match std::env::var_os(KERNEL_ENV) {
            Some(path) if !path.is_empty() => KernelChoice::Elf(path.into()),
            _ => KernelChoice::Auto,
        };
        Self {
            inner: Arc::new(Inner {
                events: Events::new(address, namespace.clone()),
                namespace,
                kernel,
                containers: Mutex::new(HashMap::new()),
                socket,
                exit,
            }),
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Task>> {
        self.inner
            .containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The task `id`, or its exec process `exec_id` (only a pod's
    /// container has them).
    fn container(&self, id: &str, exec_id: &str) -> Result<Task, ShimError> {
        let task = self
            .containers()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(id.to_owned()))?;
        if exec_id.is_empty() {
            return Ok(task);
        }
        match task.member() {
            Some(member) => Ok(Task::Exec(Arc::clone(member), member.exec(exec_id)?)),
            None => Err(ShimError::NotFound(exec_id.to_owned())),
        }
    }
}

impl Service {
    /// `create`: what the task is decides where it runs.
    fn create_task(&self, req: &api::CreateTaskRequest) -> Result<Task, ShimError> {
        let bundle = std::path::Path::new(&req.bundle);
        let spec = spec::read_value(bundle).map_err(ShimError::Spec)?;
        let kind = kind::classify(&req.id, spec.get("annotations")).map_err(ShimError::Kind)?;
        let events = self.inner.events.clone();
        let namespace = &self.inner.namespace;
        Ok(match kind {
            TaskKind::Standalone => Task::Vm(Arc::new(Container::create(
                req,
                namespace,
                events,
                Role::Standalone,
            )?)),
            TaskKind::Sandbox => Task::Vm(Arc::new(Container::create(
                req,
                namespace,
                events,
                Role::Sandbox,
            )?)),
            TaskKind::Container { sandbox } => {
                let pod = match self.containers().get(&sandbox) {
                    Some(Task::Vm(vm)) => vm.pod.clone(),
                    _ => None,
                };
                let pod = pod.ok_or(ShimError::NoPod(sandbox))?;
                Task::Member(Arc::new(Member::create(req, pod, events)?))
            }
        })
    }
}

fn exit_time(
    exit: &Exit,
) -> shim::protos::protobuf::MessageField<
    shim::protos::protobuf::well_known_types::timestamp::Timestamp,
> {
    Some(timestamp(exit.at)).into()
}

impl shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        info!("create {} in {}", req.id, req.bundle);
        if self.containers().contains_key(&req.id) {
            return Err(ShimError::Exists(req.id).into());
        }
        let task = self.create_task(&req)?;
        self.containers().insert(req.id.clone(), task);
        self.inner.events.created(&req.id, &req.bundle);
        // No process until `start`.
        Ok(api::CreateTaskResponse::default())
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let container = self.container(&req.id, &req.exec_id)?;
        let pid = match &container {
            Task::Vm(vm) => vm.start(&self.inner.kernel)?,
            Task::Member(member) => member.start()?,
            Task::Exec(member, exec) => exec.start(member)?,
        };
        info!(
            "start {} {}: the microVM runs as pid {pid}",
            req.id, req.exec_id
        );
        if req.exec_id.is_empty() {
            self.inner.events.started(&req.id, pid);
        }
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let container = self.container(&req.id, &req.exec_id)?;
        let (status, pid, exit) = match container.status() {
            Status::Created => (api::Status::CREATED, 0, None),
            Status::Running(pid) => (api::Status::RUNNING, pid, None),
            Status::Stopped(exit) => (api::Status::STOPPED, exit.pid, Some(exit)),
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: container.bundle().display().to_string(),
            pid,
            status: status.into(),
            stdin: container.stdio().stdin.clone(),
            stdout: container.stdio().stdout.clone(),
            stderr: container.stdio().stderr.clone(),
            terminal: false,
            exit_status: exit.map_or(0, |e| e.status),
            exited_at: exit.as_ref().map(exit_time).unwrap_or_default(),
            ..Default::default()
        })
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let container = self.container(&req.id, &req.exec_id)?;
        let exit = container.wait();
        Ok(api::WaitResponse {
            exit_status: exit.status,
            exited_at: exit_time(&exit),
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        info!("kill {} with signal {}", req.id, req.signal);
        let container = self.container(&req.id, &req.exec_id)?;
        container.kill(req.signal)?;
        Ok(api::Empty::default())
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let container = self.container(&req.id, &req.exec_id)?;
        let exit = container.delete()?;
        if !req.exec_id.is_empty() {
            return Ok(api::DeleteResponse {
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: exit_time(&exit),
                ..Default::default()
            });
        }
        self.containers().remove(&req.id);
        info!("delete {}: exit status {}", req.id, exit.status);
        self.inner.events.deleted(&req.id, exit);
        Ok(api::DeleteResponse {
            pid: exit.pid,
            exit_status: exit.status,
            exited_at: exit_time(&exit),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let container = self.container(&req.id, "")?;
        let processes = match container.status() {
            Status::Running(pid) => vec![shim::protos::api::ProcessInfo {
                pid,
                ..Default::default()
            }],
            Status::Created | Status::Stopped(_) => Vec::new(),
        };
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = match self.container(&req.id, "").map(|c| c.status()) {
            Ok(Status::Running(pid)) => pid,
            _ => 0,
        };
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // As other shims do: stay while a task exists (containerd asks
        // again after deleting it).
        if self.containers().is_empty() {
            info!("shutdown: no task left");
            // Before the reply: once containerd has it, no socket is left
            // (the listener needs no path to be shut down).
            let _ = std::fs::remove_file(&self.inner.socket);
            self.inner.exit.signal();
        }
        Ok(api::Empty::default())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        info!("exec {} in {}", req.exec_id, req.id);
        match self.container(&req.id, "")? {
            Task::Member(member) => member.add_exec(&req)?,
            Task::Vm(_) | Task::Exec(..) => return Err(ShimError::Exec(req.exec_id).into()),
        }
        Ok(api::Empty::default())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let pid = match self.container(&req.id, "")? {
            Task::Vm(vm) => match vm.status() {
                Status::Running(pid) => pid,
                Status::Created | Status::Stopped(_) => 0,
            },
            Task::Member(member) | Task::Exec(member, _) => member.pod_vm().pid(),
        };
        Ok(api::StatsResponse {
            stats: Some(crate::stats::of(pid)?).into(),
            ..Default::default()
        })
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        if let Task::Exec(_, exec) = self.container(&req.id, &req.exec_id)? {
            let size = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
            exec.resize(size(req.height), size(req.width))?;
        }
        Ok(api::Empty::default())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        if let Task::Exec(_, exec) = self.container(&req.id, &req.exec_id)?
            && req.stdin
        {
            exec.close_stdin();
        }
        Ok(api::Empty::default())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        self.container(&req.id, "")?;
        Err(ShimError::Update(req.id).into())
    }
}
