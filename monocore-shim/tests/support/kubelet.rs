//! Requests shaped as kubelet makes them (`pkg/kubelet/kuberuntime`), for a
//! pod with no `securityContext`, `ClusterFirst` DNS, and limits equal to
//! requests: the `PodSandboxConfig` (`generatePodSandboxConfig`) and each
//! `ContainerConfig` (`generateContainerConfig`), with the mounts kubelet
//! always adds. The pod's host side (kubelet's `/var/lib/kubelet/pods/<uid>`
//! and `/var/log/pods/<ns>_<name>_<uid>`) lives in a test's directory.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use k8s_cri::v1 as cri;

/// The DNS server the pod's `resolv.conf` names (never queried).
pub const DNS_SERVER: &str = "127.0.0.53";
/// The search domains of a pod in namespace `default` (`ClusterFirst`).
pub const DNS_SEARCHES: [&str; 3] = [
    "default.svc.cluster.local",
    "svc.cluster.local",
    "cluster.local",
];
/// Where kubelet mounts the service account token (read-only).
pub const SERVICE_ACCOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Where the pod's containers mount its `emptyDir` volume `shared`.
pub const SHARED_PATH: &str = "/shared";
/// The default `terminationMessagePath`.
pub const TERMINATION_LOG_PATH: &str = "/dev/termination-log";
/// Each container's memory limit (and request): 256 MiB.
pub const MEMORY_LIMIT: i64 = 256 << 20;
/// Each container's CPU limit (and request), in millicores.
pub const CPU_MILLIS: i64 = 500;
/// The service account token's content (the file is read-only in the pod).
pub const TOKEN: &str = "not-a-real-token";

/// kubelet's default masked paths (`securitycontext.ConvertToRuntimeMaskedPaths`).
const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// kubelet's default read-only paths.
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A pod: its identity, and its files on the host.
#[derive(Debug, Clone)]
pub struct Pod {
    /// `metadata.name` (and the hostname).
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// kubelet's pod directory (`/var/lib/kubelet/pods/<uid>`).
    pub dir: PathBuf,
    /// The pod's log directory (`/var/log/pods/<ns>_<name>_<uid>`).
    pub log_dir: PathBuf,
    /// The pod's cgroup (kubelet's cgroupfs driver: `/kubepods/…/pod<uid>`).
    pub cgroup_parent: String,
    /// How many containers the pod has (for its pod-level resources).
    pub containers: i64,
}

impl Pod {
    /// A pod named `name` in namespace `default`, with `containers`
    /// containers, its host side under `root` and its cgroup under
    /// `cgroup_root` (a cgroup path such as `/kubepods`): creates its
    /// directories, its service account volume and its `emptyDir`, as
    /// kubelet does before `RunPodSandbox`.
    pub fn new(root: &Path, cgroup_root: &str, name: &str, containers: i64) -> Self {
        let uid = uuid();
        let namespace = "default".to_owned();
        let pod = Self {
            dir: root.join("kubelet/pods").join(&uid),
            log_dir: root
                .join("kubelet/logs")
                .join(format!("{namespace}_{name}_{uid}")),
            cgroup_parent: format!("{cgroup_root}/pod{uid}"),
            name: name.to_owned(),
            namespace,
            uid,
            containers,
        };
        fs::create_dir_all(&pod.log_dir).unwrap();
        fs::create_dir_all(pod.empty_dir()).unwrap();
        let token = pod.service_account_dir();
        fs::create_dir_all(&token).unwrap();
        for (file, text) in [("token", TOKEN), ("namespace", "default"), ("ca.crt", "")] {
            fs::write(token.join(file), text).unwrap();
        }
        pod
    }

    /// The service account volume on the host.
    pub fn service_account_dir(&self) -> PathBuf {
        self.dir
            .join("volumes/kubernetes.io~projected/kube-api-access-test")
    }

    /// The `emptyDir` volume `shared` on the host.
    pub fn empty_dir(&self) -> PathBuf {
        self.dir.join("volumes/kubernetes.io~empty-dir/shared")
    }

    /// The pod's hosts file on the host (`etc-hosts`).
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("etc-hosts")
    }

    /// Container `container`'s termination log on the host.
    pub fn termination_log(&self, container: &str) -> PathBuf {
        self.dir
            .join("containers")
            .join(container)
            .join("termination-log")
    }

    /// Container `container`'s CRI log file (attempt 0) on the host.
    pub fn log_file(&self, container: &str) -> PathBuf {
        self.log_dir.join(container).join("0.log")
    }

    /// Writes the pod's hosts file as kubelet does once it knows the pod's
    /// IP (before the first container).
    pub fn write_hosts_file(&self, pod_ip: &str) {
        let hosts = format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n{pod_ip}\t{}\n",
            self.name
        );
        fs::write(self.hosts_file(), hosts).unwrap();
    }

    /// The labels kubelet gives the sandbox (the pod's own, then its own).
    pub fn labels(&self) -> HashMap<String, String> {
        map(&[
            ("app", &self.name),
            ("io.kubernetes.pod.name", &self.name),
            ("io.kubernetes.pod.namespace", &self.namespace),
            ("io.kubernetes.pod.uid", &self.uid),
        ])
    }

    /// The annotations kubelet gives the sandbox (the pod's).
    pub fn annotations(&self) -> HashMap<String, String> {
        map(&[
            (
                "kubernetes.io/config.seen",
                "2025-01-01T00:00:00.000000000Z",
            ),
            ("kubernetes.io/config.source", "api"),
            ("example.com/owner", "monocore-tests"),
        ])
    }

    /// The namespaces kubelet asks for (no `hostNetwork`, no
    /// `shareProcessNamespace`).
    fn namespace_options() -> cri::NamespaceOption {
        cri::NamespaceOption {
            network: cri::NamespaceMode::Pod.into(),
            pid: cri::NamespaceMode::Container.into(),
            ipc: cri::NamespaceMode::Pod.into(),
            ..Default::default()
        }
    }

    fn unconfined() -> Option<cri::SecurityProfile> {
        Some(cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Unconfined.into(),
            localhost_ref: String::new(),
        })
    }

    /// The `PodSandboxConfig` kubelet sends to `RunPodSandbox`.
    pub fn sandbox_config(&self) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname: self.name.clone(),
            log_directory: self.log_dir.to_str().unwrap().to_owned(),
            dns_config: Some(cri::DnsConfig {
                servers: vec![DNS_SERVER.to_owned()],
                searches: DNS_SEARCHES.iter().map(|s| (*s).to_owned()).collect(),
                options: vec!["ndots:5".to_owned()],
            }),
            port_mappings: Vec::new(),
            labels: self.labels(),
            annotations: self.annotations(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(Self::namespace_options()),
                    seccomp: Self::unconfined(),
                    ..Default::default()
                }),
                sysctls: HashMap::new(),
                // No RuntimeClass overhead; the pod's resources are the sum
                // of its containers' (`calculateSandboxResources`).
                overhead: Some(cri::LinuxContainerResources::default()),
                resources: Some(resources(self.containers)),
            }),
            windows: None,
        }
    }

    /// A container of this pod, as kubelet would build it.
    pub fn container(&self, name: &str, image_ref: &str, image_name: &str) -> Container<'_> {
        Container {
            pod: self,
            name: name.to_owned(),
            image_ref: image_ref.to_owned(),
            image_name: image_name.to_owned(),
            command: Vec::new(),
            args: Vec::new(),
            working_dir: String::new(),
            envs: vec![("POD_NAME".to_owned(), self.name.clone())],
        }
    }
}

/// A container's spec, turned into kubelet's `ContainerConfig` by
/// [`Container::build`].
#[derive(Debug, Clone)]
pub struct Container<'a> {
    pod: &'a Pod,
    name: String,
    image_ref: String,
    image_name: String,
    command: Vec<String>,
    args: Vec<String>,
    working_dir: String,
    envs: Vec<(String, String)>,
}

impl Container<'_> {
    /// `command`.
    pub fn command(mut self, command: &[&str]) -> Self {
        self.command = command.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// `args`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// `workingDir`.
    pub fn working_dir(mut self, dir: &str) -> Self {
        dir.clone_into(&mut self.working_dir);
        self
    }

    /// One more `env` entry.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The `ContainerConfig`; creates, as kubelet does first, the
    /// container's log directory and its (empty, world-writable)
    /// termination log.
    pub fn build(self) -> cri::ContainerConfig {
        let pod = self.pod;
        fs::create_dir_all(pod.log_dir.join(&self.name)).unwrap();
        let termination_log = pod.termination_log(&self.name);
        fs::create_dir_all(termination_log.parent().unwrap()).unwrap();
        fs::write(&termination_log, "").unwrap();
        fs::set_permissions(&termination_log, fs::Permissions::from_mode(0o666)).unwrap();
        let mount = |host: &Path, container: &str, readonly: bool| cri::Mount {
            container_path: container.to_owned(),
            host_path: host.to_str().unwrap().to_owned(),
            readonly,
            selinux_relabel: false,
            propagation: cri::MountPropagation::PropagationPrivate.into(),
            ..Default::default()
        };
        // Volume mounts in the pod spec's order (the service account's is
        // appended by its admission plugin), then the hosts file, then the
        // termination log.
        let mounts = vec![
            mount(&pod.empty_dir(), SHARED_PATH, false),
            mount(&pod.service_account_dir(), SERVICE_ACCOUNT_PATH, true),
            mount(&pod.hosts_file(), "/etc/hosts", false),
            mount(&termination_log, TERMINATION_LOG_PATH, false),
        ];
        let labels = map(&[
            ("io.kubernetes.container.name", &self.name),
            ("io.kubernetes.pod.name", &pod.name),
            ("io.kubernetes.pod.namespace", &pod.namespace),
            ("io.kubernetes.pod.uid", &pod.uid),
        ]);
        let annotations = map(&[
            ("io.kubernetes.container.hash", "5d1e3a2b"),
            ("io.kubernetes.container.restartCount", "0"),
            (
                "io.kubernetes.container.terminationMessagePath",
                TERMINATION_LOG_PATH,
            ),
            ("io.kubernetes.container.terminationMessagePolicy", "File"),
            ("io.kubernetes.pod.terminationGracePeriod", "30"),
        ]);
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: self.name.clone(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: self.image_ref,
                user_specified_image: self.image_name,
                ..Default::default()
            }),
            command: self.command,
            args: self.args,
            working_dir: self.working_dir,
            envs: self
                .envs
                .into_iter()
                .map(|(key, value)| cri::KeyValue { key, value })
                .collect(),
            mounts,
            devices: Vec::new(),
            labels,
            annotations,
            log_path: format!("{}/0.log", self.name),
            stdin: false,
            stdin_once: false,
            tty: false,
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    oom_score_adj: -997,
                    ..resources(1)
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(Pod::namespace_options()),
                    masked_paths: MASKED_PATHS.iter().map(|s| (*s).to_owned()).collect(),
                    readonly_paths: READONLY_PATHS.iter().map(|s| (*s).to_owned()).collect(),
                    seccomp: Pod::unconfined(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }
}

/// The resources of `n` containers of [`MEMORY_LIMIT`] and [`CPU_MILLIS`]
/// each (Guaranteed QoS), as kubelet converts them (a container's also
/// get Guaranteed's `oom_score_adj`, -997).
fn resources(n: i64) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: n * CPU_MILLIS * 100,
        cpu_shares: n * CPU_MILLIS * 1024 / 1000,
        memory_limit_in_bytes: n * MEMORY_LIMIT,
        ..Default::default()
    }
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A random UUID (version 4), as the API server gives a pod.
fn uuid() -> String {
    let mut b = [0_u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
