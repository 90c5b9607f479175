//! A private containerd with its CRI plugin on, driven as kubelet drives it
//! (see `cri_client` and `kubelet`): its `k8s.io` namespace holds a busybox
//! image ([`IMAGE`]) and a busybox stand-in for the pause image
//! ([`PAUSE_IMAGE`], whose `Cmd` sleeps); its runtime handlers are
//! [`MONOCORE`] (the shim under test) and [`RUNC`] (Debian's runc, the
//! reference); its CNI network is [`Cni`], which keeps each pod offline.
//! Everything lives in the private containerd's temporary directory, the
//! pods' network namespaces included (`netns_mounts_under_state_dir`),
//! except the pods' cgroups, which go under a cgroup of the test's own
//! (named after that directory) and are removed with it.
//!
//! Dropping a [`Cri`] ends whatever a failed test left: the processes in
//! the pods' cgroups and network namespaces, containerd and its shims, the
//! mounts, the cgroups.

use std::{
    cell::RefCell,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_cri::v1 as cri;

use super::{
    Containerd, ContainerdVersion, IMAGE, ImageSpec, build_images, cannot_run,
    cgroups::{cgroup_dirs, cgroup_procs, remove_cgroups},
    cni::Cni,
    containerd_blocker,
    cri_client::CriClient,
    kubelet::Pod,
};

/// The containerd namespace the CRI plugin uses.
pub const NAMESPACE: &str = "k8s.io";
/// The runtime handler of the shim under test (`io.containerd.monocore.v1`).
pub const MONOCORE: &str = "monocore";
/// The reference runtime handler (`io.containerd.runc.v2`).
pub const RUNC: &str = "runc";
/// The CRI plugin's `sandbox_image`: busybox, its `Cmd` a long sleep.
pub const PAUSE_IMAGE: &str = "localhost/monocore-pause:test";

/// Why CRI tests with runtime handler `handler` under containerd
/// `version` cannot run here, if they cannot: what [`containerd_blocker`]
/// finds, or no `ip`/`nsenter` (the CNI plugin's tools), or, for [`RUNC`],
/// no `runc`.
pub fn cri_blocker(handler: &str, version: ContainerdVersion) -> Option<String> {
    if let Some(reason) = containerd_blocker(version) {
        return Some(reason);
    }
    let mut tools = vec![
        ("ip", "-V", "iproute2"),
        ("nsenter", "--version", "util-linux"),
    ];
    if handler == RUNC {
        tools.push(("runc", "--version", "runc"));
    }
    for (tool, arg, package) in tools {
        let found = std::process::Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|out| out.status.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (Debian's {package}; scripts/setup.sh installs it)"
            ));
        }
    }
    None
}

/// `true` when CRI tests with `handler` under containerd `version` can
/// run; otherwise the loud skip line (or, with `MONOCORE_REQUIRE_BOOT=1`,
/// a failure).
pub fn may_run_cri(test: &str, handler: &str, version: ContainerdVersion) -> bool {
    match cri_blocker(handler, version) {
        None => true,
        Some(reason) => cannot_run(test, &format!("CRI tests cannot run here: {reason}")),
    }
}

/// containerd with the CRI plugin on, and a CRI client connected to it.
pub struct Cri {
    client: CriClient,
    cni: Cni,
    cgroup_root: String,
    /// The inodes of the pods' network namespaces seen so far.
    netns: RefCell<Vec<u64>>,
    containerd: Containerd,
}

impl Cri {
    /// Starts containerd 1.6; see [`Cri::start_with`].
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(ContainerdVersion::V1_6, env)
    }

    /// Starts containerd `version` (with `env` added to its environment
    /// and the shim's), waits for the CRI plugin to be ready, imports the
    /// images into `k8s.io`, and waits for the CRI plugin to list them.
    pub fn start_with(version: ContainerdVersion, env: &[(&str, &str)]) -> Self {
        let mut cni = None;
        let containerd = Containerd::start_with_config(version, env, |dir| {
            let installed = Cni::install(&dir.join("cni"));
            let config = match version {
                ContainerdVersion::V1_6 => config_v2(dir, &installed),
                ContainerdVersion::V2_1 => config_v3(dir, &installed),
            };
            cni = Some(installed);
            config
        });
        let cni = cni.unwrap();
        let name = containerd.dir().file_name().unwrap().to_str().unwrap();
        let cgroup_root = format!("/{name}");
        let client = CriClient::connect(&containerd.dir().join("containerd.sock"))
            .unwrap_or_else(|e| panic!("{e}\n{}", containerd.log_tail()));
        let cri = Self {
            client,
            cni,
            cgroup_root,
            netns: RefCell::new(Vec::new()),
            containerd,
        };
        cri.wait_ready();
        let archive = build_images(
            cri.dir(),
            &[
                ImageSpec {
                    name: IMAGE,
                    cmd: &["/bin/sh"],
                },
                ImageSpec {
                    name: PAUSE_IMAGE,
                    cmd: &["/bin/sleep", "2147483647"],
                },
            ],
        );
        cri.containerd.ctr_ok(&[
            "--namespace",
            NAMESPACE,
            "image",
            "import",
            archive.to_str().unwrap(),
        ]);
        for image in [IMAGE, PAUSE_IMAGE] {
            cri.poll("the CRI plugin to list the imported image", || {
                cri.client.image_status(image).unwrap().is_some()
            });
        }
        cri
    }

    /// Waits (polling, at most 30 s) until `RuntimeReady` and `NetworkReady`.
    fn wait_ready(&self) {
        self.poll("the CRI plugin's RuntimeReady and NetworkReady", || {
            self.client.status().is_ok_and(|s| {
                let conditions = s.status.map(|s| s.conditions).unwrap_or_default();
                ["RuntimeReady", "NetworkReady"]
                    .iter()
                    .all(|wanted| conditions.iter().any(|c| c.r#type == *wanted && c.status))
            })
        });
    }

    /// Polls `done` every 100 ms until it holds; panics after 30 s with
    /// containerd's log.
    fn poll(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "no {what} within 30 s\n{}",
                self.containerd.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The CRI client.
    pub fn client(&self) -> &CriClient {
        &self.client
    }

    /// The private containerd.
    pub fn containerd(&self) -> &Containerd {
        &self.containerd
    }

    /// The private containerd, to kill or restart it; call
    /// [`Cri::reconnect`] after a restart.
    pub fn containerd_mut(&mut self) -> &mut Containerd {
        &mut self.containerd
    }

    /// Connects the client again (after containerd restarted) and waits
    /// for the CRI plugin to be ready.
    pub fn reconnect(&mut self) {
        self.client = CriClient::connect(&self.dir().join("containerd.sock"))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.containerd.log_tail()));
        self.wait_ready();
    }

    /// The CNI plugin's directory and call log.
    pub fn cni(&self) -> &Cni {
        &self.cni
    }

    /// The temporary directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.containerd.dir()
    }

    /// The image id of [`IMAGE`], which kubelet puts in `ContainerConfig`.
    pub fn image_ref(&self) -> String {
        self.client.image_status(IMAGE).unwrap().unwrap().id
    }

    /// A new pod named `name` with `containers` containers, its host side
    /// in this containerd's directory.
    pub fn pod(&self, name: &str, containers: i64) -> Pod {
        Pod::new(self.dir(), &self.cgroup_root, name, containers)
    }

    /// `RunPodSandbox` of `pod` with `handler`; records the pod's network
    /// namespace (what the CNI plugin was given) so that the checks and the
    /// clean-up find any process in it.
    pub fn run_pod(&self, pod: &Pod, handler: &str) -> Result<String, tonic::Status> {
        let answer = self.client.run_pod_sandbox(&pod.sandbox_config(), handler);
        for call in self.cni.calls().into_iter().filter(|c| c.command == "ADD") {
            if let Ok(meta) = fs::metadata(&call.netns) {
                let mut netns = self.netns.borrow_mut();
                if !netns.contains(&meta.ino()) {
                    netns.push(meta.ino());
                }
            }
        }
        answer
    }

    /// Polls `ContainerStatus` of `id` (at most `timeout`) until its state
    /// is `state`; returns that status.
    pub fn wait_container(
        &self,
        id: &str,
        state: cri::ContainerState,
        timeout: Duration,
    ) -> cri::ContainerStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .client
                .container_status(id, false)
                .unwrap()
                .status
                .unwrap();
            if status.state() == state {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} not {state:?} within {timeout:?}: {status:#?}\n{}",
                self.containerd.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The OCI spec of container `id` (a sandbox's or a container's), as
    /// containerd stores it and writes it into the task's bundle
    /// (`config.json`) for the shim.
    pub fn spec(&self, id: &str) -> serde_json::Value {
        let info = self
            .containerd
            .ctr_ok(&["--namespace", NAMESPACE, "container", "info", id]);
        let mut info: serde_json::Value = serde_json::from_str(&info).unwrap();
        info["Spec"].take()
    }

    /// Where the CRI plugin mounts the pods' network namespaces.
    pub fn netns_dir(&self) -> PathBuf {
        self.dir().join("state/io.containerd.grpc.v1.cri/netns")
    }

    /// Processes in a pod's cgroup or network namespace.
    pub fn pod_processes(&self) -> Vec<u32> {
        let netns = self.netns.borrow();
        let mut pids = cgroup_procs(&self.cgroup_root);
        for pid in all_pids() {
            let ino = fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
            if ino.is_ok_and(|ino| netns.contains(&ino)) && !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids.retain(|pid| !super::has_ended(*pid));
        pids
    }

    /// Asserts that no pod is left: nothing listed by the CRI or by `ctr`
    /// in `k8s.io`, no process in a pod's cgroup or network namespace, no
    /// container cgroup, no network namespace, every CNI `ADD` deleted, no
    /// shim socket; then [`Containerd::assert_nothing_left`].
    pub fn assert_nothing_left(&self) {
        let pods = self.client.list_pod_sandbox().unwrap();
        assert!(pods.is_empty(), "pod sandboxes left: {pods:#?}");
        let containers = self.client.list_containers().unwrap();
        assert!(containers.is_empty(), "containers left: {containers:#?}");
        assert_eq!(self.containerd.tasks_in(NAMESPACE), [], "tasks left");
        assert_eq!(
            self.containerd.containers_in(NAMESPACE),
            Vec::<String>::new(),
            "containers left"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pod_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left: Vec<_> = self
            .pod_processes()
            .into_iter()
            .map(|pid| (pid, fs::read_to_string(format!("/proc/{pid}/cmdline"))))
            .collect();
        assert!(left.is_empty(), "pod processes left: {left:?}");
        // kubelet removes the pod's cgroup; the runtime, its containers'.
        let nested: Vec<_> = cgroup_dirs(&self.cgroup_root)
            .into_iter()
            .filter(|d| d.components().count() > 3)
            .collect();
        assert!(nested.is_empty(), "container cgroups left: {nested:?}");
        let netns: Vec<_> = fs::read_dir(self.netns_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(netns.is_empty(), "network namespaces left: {netns:?}");
        self.cni.assert_every_add_deleted();
        for call in self.cni.calls().iter().filter(|c| c.command == "ADD") {
            let socket = self
                .containerd
                .shim_socket_in(NAMESPACE, &call.container_id);
            assert!(!socket.exists(), "shim socket left: {}", socket.display());
        }
        self.containerd.assert_nothing_left();
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // What a failed test left: its pods' processes (a runc container
        // outlives its killed shim) and their cgroups, here; then
        // containerd, its shims and the mounts, when `containerd` drops.
        for pid in self.pod_processes() {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: plain syscall; the pid is in one of this test's
                // pods (its cgroup or network namespace).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // The processes just killed leave their cgroups in a moment.
        remove_cgroups(&self.cgroup_root, Duration::from_secs(10));
        // A shim killed (when `containerd` drops) leaves its socket, which
        // is not under the test's directory: the pods' shims are named by
        // their sandbox ids.
        for call in self.cni.calls().iter().filter(|c| c.command == "ADD") {
            let _ = fs::remove_file(
                self.containerd
                    .shim_socket_in(NAMESPACE, &call.container_id),
            );
        }
    }
}

/// A containerd 1.6 config (version 2) with the CRI plugin on, everything
/// under `dir`.
fn config_v2(dir: &Path, cni: &Cni) -> String {
    let d = dir.display();
    let bin = cni.bin_dir();
    let conf = cni.conf_dir();
    let (bin, conf) = (bin.display(), conf.display());
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  # No oom_score_adj below containerd's own (the CRI plugin gives a sandbox
  # -998, kubelet a Guaranteed container -997): lowering it needs
  # CAP_SYS_RESOURCE, which some test hosts (this project's) do not grant.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{conf}"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "{RUNC}"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{RUNC}]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{RUNC}.options]
        Root = "{d}/runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{MONOCORE}]
      runtime_type = "{}"
"#,
        super::RUNTIME
    )
}

/// The same for containerd 2.1 (config version 3), where the CRI plugin is
/// three: `io.containerd.cri.v1.images` (the pinned sandbox image),
/// `io.containerd.cri.v1.runtime` (the runtimes, CNI, and the rest of what
/// version 2 had under `io.containerd.grpc.v1.cri`) and
/// `io.containerd.grpc.v1.cri` (the CRI service and its stream server).
/// Three of 2.1's defaults would reach outside `dir`, so they are set
/// here: NRI (on by default, serving `/var/run/nri/nri.sock`) is off, CDI
/// (watching `/etc/cdi` and `/var/run/cdi`) is off, and the `opt` plugin's
/// directory is `dir/opt`.
fn config_v3(dir: &Path, cni: &Cni) -> String {
    let d = dir.display();
    let bin = cni.bin_dir();
    let conf = cni.conf_dir();
    let (bin, conf) = (bin.display(), conf.display());
    format!(
        r#"version = 3
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins]
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

  [plugins.'io.containerd.cri.v1.runtime']
    netns_mounts_under_state_dir = true
    # As in the version 2 config: no oom_score_adj below containerd's own.
    restrict_oom_score_adj = true
    enable_cdi = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["{bin}"]
      conf_dir = "{conf}"

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "{RUNC}"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{RUNC}]
        runtime_type = "io.containerd.runc.v2"

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{RUNC}.options]
          Root = "{d}/runc"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{MONOCORE}]
        runtime_type = "{}"

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [plugins.'io.containerd.internal.v1.opt']
    path = "{d}/opt"
"#,
        super::RUNTIME
    )
}

/// Every pid in `/proc` but this process's.
fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid != std::process::id())
        .collect()
}
