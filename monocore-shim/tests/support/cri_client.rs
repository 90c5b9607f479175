//! A CRI client, as kubelet is one: the `runtime.v1` `RuntimeService` and
//! `ImageService` (the `k8s-cri` crate's tonic bindings) over containerd's
//! unix socket, behind a synchronous API. Each call has a deadline (sent to
//! containerd as `grpc-timeout`, and enforced here too), and answers with
//! the response or the gRPC `Status` the runtime returned, as a value: a
//! test asserts on refusals as much as on successes.

use std::{future::Future, path::Path, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    self as cri, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use tonic::{
    Request, Response, Status,
    transport::{Channel, Endpoint, Uri},
};

/// What a call returns: its answer, or the runtime's `Status`.
pub type CriResult<T> = Result<T, Status>;

/// kubelet's default `--runtime-request-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to a CRI runtime's socket.
pub struct CriClient {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    timeout: Duration,
    // Last: the clients' channel is dropped before the runtime it ran on.
    rt: tokio::runtime::Runtime,
}

impl CriClient {
    /// Connects to the CRI server on the unix socket `socket` (containerd's
    /// `grpc.address`). Every call's deadline is [`DEFAULT_TIMEOUT`].
    pub fn connect(socket: &Path) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
        let path = socket.to_owned();
        // The URI only fills the `:authority` header: the connector dials
        // the socket, whatever the URI names.
        let endpoint = Endpoint::from_static("http://localhost");
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        let channel = rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    endpoint.connect_with_connector(connector),
                )
                .await
            })
            .map_err(|_| format!("{}: no connection within 10 s", socket.display()))?
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            timeout: DEFAULT_TIMEOUT,
            rt,
        })
    }

    /// Sets the deadline of every later call.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs `call` on the runtime service with the deadline `timeout`.
    fn runtime<T, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        call: impl FnOnce(RuntimeServiceClient<Channel>) -> Fut,
    ) -> CriResult<T>
    where
        Fut: Future<Output = CriResult<Response<T>>>,
    {
        self.block_on(what, timeout, call(self.runtime.clone()))
    }

    /// Runs `call` on the image service with the client's deadline.
    fn image<T, Fut>(
        &self,
        what: &str,
        call: impl FnOnce(ImageServiceClient<Channel>) -> Fut,
    ) -> CriResult<T>
    where
        Fut: Future<Output = CriResult<Response<T>>>,
    {
        self.block_on(what, self.timeout, call(self.images.clone()))
    }

    fn block_on<T>(
        &self,
        what: &str,
        timeout: Duration,
        call: impl Future<Output = CriResult<Response<T>>>,
    ) -> CriResult<T> {
        self.rt.block_on(async {
            match tokio::time::timeout(timeout, call).await {
                Ok(answer) => answer.map(Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "{what}: no answer within {timeout:?}"
                ))),
            }
        })
    }

    /// A request with the deadline `timeout` in its `grpc-timeout` header.
    fn request<M>(message: M, timeout: Duration) -> Request<M> {
        let mut request = Request::new(message);
        request.set_timeout(timeout);
        request
    }

    /// `Version`, as kubelet asks it (`version: "0.1.0"`).
    pub fn version(&self) -> CriResult<cri::VersionResponse> {
        let req = Self::request(
            cri::VersionRequest {
                version: "0.1.0".to_owned(),
            },
            self.timeout,
        );
        self.runtime("Version", self.timeout, |mut c| async move {
            c.version(req).await
        })
    }

    /// `Status`: the runtime's and the network's conditions.
    pub fn status(&self) -> CriResult<cri::StatusResponse> {
        let req = Self::request(cri::StatusRequest { verbose: false }, self.timeout);
        self.runtime("Status", self.timeout, |mut c| async move {
            c.status(req).await
        })
    }

    /// `RunPodSandbox` with the runtime handler `handler` (a RuntimeClass's
    /// `handler`); returns the sandbox's id.
    pub fn run_pod_sandbox(
        &self,
        config: &cri::PodSandboxConfig,
        handler: &str,
    ) -> CriResult<String> {
        let req = Self::request(
            cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.to_owned(),
            },
            self.timeout,
        );
        self.runtime("RunPodSandbox", self.timeout, |mut c| async move {
            c.run_pod_sandbox(req).await
        })
        .map(|r| r.pod_sandbox_id)
    }

    /// `PodSandboxStatus`; with `verbose`, its `info` holds containerd's
    /// view as JSON (`info["info"]`: pid, runtime spec, netns path…).
    pub fn pod_sandbox_status(
        &self,
        pod_id: &str,
        verbose: bool,
    ) -> CriResult<cri::PodSandboxStatusResponse> {
        let req = Self::request(
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod_id.to_owned(),
                verbose,
            },
            self.timeout,
        );
        self.runtime("PodSandboxStatus", self.timeout, |mut c| async move {
            c.pod_sandbox_status(req).await
        })
    }

    /// `CreateContainer` in pod `pod_id`, whose config was `sandbox`;
    /// returns the container's id.
    pub fn create_container(
        &self,
        pod_id: &str,
        config: &cri::ContainerConfig,
        sandbox: &cri::PodSandboxConfig,
    ) -> CriResult<String> {
        let req = Self::request(
            cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.to_owned(),
                config: Some(config.clone()),
                sandbox_config: Some(sandbox.clone()),
            },
            self.timeout,
        );
        self.runtime("CreateContainer", self.timeout, |mut c| async move {
            c.create_container(req).await
        })
        .map(|r| r.container_id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, id: &str) -> CriResult<()> {
        let req = Self::request(
            cri::StartContainerRequest {
                container_id: id.to_owned(),
            },
            self.timeout,
        );
        self.runtime("StartContainer", self.timeout, |mut c| async move {
            c.start_container(req).await
        })
        .map(drop)
    }

    /// `ContainerStatus`; with `verbose`, its `info["info"]` is
    /// containerd's JSON (pid, runtime spec…).
    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> CriResult<cri::ContainerStatusResponse> {
        let req = Self::request(
            cri::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose,
            },
            self.timeout,
        );
        self.runtime("ContainerStatus", self.timeout, |mut c| async move {
            c.container_status(req).await
        })
    }

    /// `ExecSync` of `cmd` in container `id`, which the runtime ends after
    /// `timeout` (0: none). The call's deadline is the client's plus
    /// `timeout`, as kubelet's is.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> CriResult<cri::ExecSyncResponse> {
        let deadline = self.timeout + timeout;
        let req = Self::request(
            cri::ExecSyncRequest {
                container_id: id.to_owned(),
                cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
                timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            },
            deadline,
        );
        self.runtime("ExecSync", deadline, |mut c| async move {
            c.exec_sync(req).await
        })
    }

    /// `Exec`: what `kubectl exec` asks for; the answer is the URL of the
    /// CRI plugin's streaming server that carries the command's streams
    /// (see `support::cri_stream`).
    pub fn exec(&self, id: &str, cmd: &[&str], tty: bool) -> CriResult<String> {
        let req = Self::request(
            cri::ExecRequest {
                container_id: id.to_owned(),
                cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
                tty,
                stdin: true,
                stdout: true,
                // With a terminal, stderr is the terminal too.
                stderr: !tty,
            },
            self.timeout,
        );
        self.runtime(
            "Exec",
            self.timeout,
            |mut c| async move { c.exec(req).await },
        )
        .map(|response| response.url)
    }

    /// `ContainerStats`: what the container uses (kubelet's summary API
    /// asks this).
    pub fn container_stats(&self, id: &str) -> CriResult<cri::ContainerStats> {
        let req = Self::request(
            cri::ContainerStatsRequest {
                container_id: id.to_owned(),
            },
            self.timeout,
        );
        self.runtime("ContainerStats", self.timeout, |mut c| async move {
            c.container_stats(req).await
        })
        .and_then(|r| {
            r.stats
                .ok_or_else(|| tonic::Status::not_found(format!("no stats for {id}")))
        })
    }

    /// `UpdateContainerResources`: a new memory limit, in bytes.
    pub fn update_memory(&self, id: &str, bytes: i64) -> CriResult<()> {
        let req = Self::request(
            cri::UpdateContainerResourcesRequest {
                container_id: id.to_owned(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: bytes,
                    ..Default::default()
                }),
                ..Default::default()
            },
            self.timeout,
        );
        self.runtime(
            "UpdateContainerResources",
            self.timeout,
            |mut c| async move { c.update_container_resources(req).await },
        )
        .map(|_| ())
    }

    /// `StopContainer`: SIGTERM (or the image's stop signal), then SIGKILL
    /// after `grace`. The call's deadline is the client's plus `grace`.
    pub fn stop_container(&self, id: &str, grace: Duration) -> CriResult<()> {
        let deadline = self.timeout + grace;
        let req = Self::request(
            cri::StopContainerRequest {
                container_id: id.to_owned(),
                timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
            },
            deadline,
        );
        self.runtime("StopContainer", deadline, |mut c| async move {
            c.stop_container(req).await
        })
        .map(drop)
    }

    /// `RemoveContainer`.
    pub fn remove_container(&self, id: &str) -> CriResult<()> {
        let req = Self::request(
            cri::RemoveContainerRequest {
                container_id: id.to_owned(),
            },
            self.timeout,
        );
        self.runtime("RemoveContainer", self.timeout, |mut c| async move {
            c.remove_container(req).await
        })
        .map(drop)
    }

    /// `StopPodSandbox`: stops its containers, then the sandbox, and tears
    /// its network down.
    pub fn stop_pod_sandbox(&self, pod_id: &str) -> CriResult<()> {
        let req = Self::request(
            cri::StopPodSandboxRequest {
                pod_sandbox_id: pod_id.to_owned(),
            },
            self.timeout,
        );
        self.runtime("StopPodSandbox", self.timeout, |mut c| async move {
            c.stop_pod_sandbox(req).await
        })
        .map(drop)
    }

    /// `RemovePodSandbox`: removes the sandbox and every container in it.
    pub fn remove_pod_sandbox(&self, pod_id: &str) -> CriResult<()> {
        let req = Self::request(
            cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod_id.to_owned(),
            },
            self.timeout,
        );
        self.runtime("RemovePodSandbox", self.timeout, |mut c| async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    /// `ListPodSandbox` with no filter.
    pub fn list_pod_sandbox(&self) -> CriResult<Vec<cri::PodSandbox>> {
        let req = Self::request(cri::ListPodSandboxRequest { filter: None }, self.timeout);
        self.runtime("ListPodSandbox", self.timeout, |mut c| async move {
            c.list_pod_sandbox(req).await
        })
        .map(|r| r.items)
    }

    /// `ListContainers` with no filter.
    pub fn list_containers(&self) -> CriResult<Vec<cri::Container>> {
        let req = Self::request(cri::ListContainersRequest { filter: None }, self.timeout);
        self.runtime("ListContainers", self.timeout, |mut c| async move {
            c.list_containers(req).await
        })
        .map(|r| r.containers)
    }

    /// `ListImages` with no filter.
    pub fn list_images(&self) -> CriResult<Vec<cri::Image>> {
        let req = Self::request(cri::ListImagesRequest { filter: None }, self.timeout);
        self.image(
            "ListImages",
            |mut c| async move { c.list_images(req).await },
        )
        .map(|r| r.images)
    }

    /// `ImageStatus` of `image` (a name or an id), as kubelet asks before
    /// it pulls: `None` when the runtime does not have it.
    pub fn image_status(&self, image: &str) -> CriResult<Option<cri::Image>> {
        let req = Self::request(
            cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                verbose: false,
            },
            self.timeout,
        );
        self.image(
            "ImageStatus",
            |mut c| async move { c.image_status(req).await },
        )
        .map(|r| r.image)
    }
}
