//! The specs containerd's CRI plugin writes for a pod's sandbox and its
//! containers, mapped for their roles.

use super::*;

fn map_as(spec: &Value, bundle: &Bundle, role: Role) -> Mapped {
    map(spec, bundle.path(), role)
        .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)))
}

fn refused_as(spec: &Value, bundle: &Bundle, role: Role) -> (String, String) {
    match map(spec, bundle.path(), role) {
        Err(SpecError::Refused { at, refusal }) => (at.to_string(), refusal.to_string()),
        Err(other) => panic!("not a refusal: {other}"),
        Ok(mapped) => panic!("accepted: {:?}", mapped.pod),
    }
}

fn noted(mapped: &Mapped) -> Vec<String> {
    mapped
        .notes
        .entries()
        .iter()
        .map(|(at, _)| at.to_string())
        .collect()
}

/// A sandbox spec as the CRI plugin writes it: a read-only pause root, the
/// pause process as user 65535, the pod's hostname, the pod's network
/// namespace by path, its /dev/shm bound from the sandbox's directory.
pub(super) fn sandbox_spec(bundle: &Bundle) -> Value {
    let mut spec = with(ctr_spec(), "/root/readonly", json!(true));
    spec = with(spec, "/process/args", json!(["/pause"]));
    spec = with(spec, "/process/user", json!({"uid": 65535, "gid": 65535}));
    spec = with(spec, "/hostname", json!("web-0"));
    spec = with(
        spec,
        "/linux/namespaces/4/path",
        json!("/var/run/netns/cni-1"),
    );
    with(
        spec,
        "/mounts/7",
        json!({"destination": "/dev/shm", "type": "bind", "source": bundle.host("data"), "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
    )
}

#[test]
fn a_sandbox_gives_the_pod_its_hostname_and_runs_no_process() {
    let bundle = Bundle::new();
    let mapped = map_as(&sandbox_spec(&bundle), &bundle, Role::Sandbox);
    assert_eq!(mapped.pod.hostname.as_deref(), Some("web-0"));
    let notes = noted(&mapped);
    for at in ["root.readonly", "process", "mounts[7]"] {
        assert!(notes.iter().any(|n| n == at), "{at} not noted: {notes:?}");
    }
    // The pod's network namespace is where the VMM runs.
    assert_eq!(
        mapped.pod.network_namespace.as_deref(),
        Some(std::path::Path::new("/var/run/netns/cni-1"))
    );
    // The same spec as a VM of its own is refused at its read-only root.
    assert_eq!(
        refused_as(&sandbox_spec(&bundle), &bundle, Role::Standalone).0,
        "root.readonly"
    );
}

/// The sysctls containerd 2's CRI plugin adds to every pod sandbox
/// (`enable_unprivileged_ports`, `enable_unprivileged_icmp`, on by default).
fn containerd2_sysctls() -> Value {
    json!({"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"})
}

#[test]
fn a_sandbox_notes_the_sysctls_containerd_2_adds_to_every_pod() {
    let bundle = Bundle::new();
    let spec = with(
        sandbox_spec(&bundle),
        "/linux/sysctl",
        containerd2_sysctls(),
    );
    let notes = noted(&map_as(&spec, &bundle, Role::Sandbox));
    for at in [
        "linux.sysctl.net.ipv4.ip_unprivileged_port_start",
        "linux.sysctl.net.ipv4.ping_group_range",
    ] {
        assert!(notes.iter().any(|n| n == at), "{at} not noted: {notes:?}");
    }
    // Any other sysctl, or another value, is still refused, and so are
    // these outside a sandbox.
    let refusal = |sysctl: &str| {
        format!("sysctl `{sysctl}` cannot be set: the guest kernel is not configured from the spec")
    };
    let mut sysctls = containerd2_sysctls();
    sysctls["net.ipv4.ip_forward"] = json!("1");
    let spec = with(sandbox_spec(&bundle), "/linux/sysctl", sysctls);
    assert_eq!(
        refused_as(&spec, &bundle, Role::Sandbox),
        (
            "linux.sysctl.net.ipv4.ip_forward".to_owned(),
            refusal("net.ipv4.ip_forward")
        )
    );
    let other_value = json!({"net.ipv4.ip_unprivileged_port_start": "80"});
    let spec = with(sandbox_spec(&bundle), "/linux/sysctl", other_value);
    assert_eq!(
        refused_as(&spec, &bundle, Role::Sandbox).0,
        "linux.sysctl.net.ipv4.ip_unprivileged_port_start"
    );
    let spec = with(ctr_spec(), "/linux/sysctl", containerd2_sysctls());
    assert_eq!(
        refused_as(&spec, &bundle, Role::Standalone).0,
        "linux.sysctl.net.ipv4.ip_unprivileged_port_start"
    );
}

#[test]
fn a_sandbox_hostname_that_cannot_be_one_is_refused() {
    let bundle = Bundle::new();
    // (An empty one is an absent one: the guest keeps its own.)
    for bad in ["a/b", &"h".repeat(65)] {
        let spec = with(sandbox_spec(&bundle), "/hostname", json!(bad));
        assert_eq!(
            refused_as(&spec, &bundle, Role::Sandbox).0,
            "hostname",
            "{bad:?}"
        );
    }
}

/// An app container's spec as the CRI plugin writes it, with kubelet's
/// mounts: the pod's files, the termination log, a read-only volume, an
/// emptyDir, and the pod's /dev/shm.
fn container_spec(bundle: &Bundle) -> Value {
    let mut spec = with(ctr_spec(), "/root/readonly", json!(true));
    spec = with(
        spec,
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 4]}),
    );
    spec = with(spec, "/linux/namespaces/1/path", json!("/proc/4242/ns/ipc"));
    spec = with(spec, "/linux/namespaces/4/path", json!("/proc/4242/ns/net"));
    spec = with(spec, "/linux/resources/memory", json!({"limit": 134217728}));
    let mounts = [
        ("/etc/hosts", bundle.host("hosts"), "rw"),
        ("/dev/termination-log", bundle.host("hosts"), "rw"),
        (
            "/var/run/secrets/kubernetes.io/serviceaccount",
            bundle.host("data"),
            "ro",
        ),
        ("/cache", bundle.host("data"), "rw"),
        ("/dev/shm", bundle.host("data"), "rw"),
    ];
    for (i, (destination, source, mode)) in mounts.into_iter().enumerate() {
        spec = with(
            spec,
            &format!("/mounts/{}", 7 + i),
            json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind", "rprivate", mode]}),
        );
    }
    spec
}

#[test]
fn a_pod_container_gets_its_binds_user_and_read_only_root() {
    let bundle = Bundle::new();
    let mapped = map_as(&container_spec(&bundle), &bundle, Role::PodContainer);
    let pod = &mapped.pod;
    assert!(pod.readonly_root);
    assert_eq!(
        pod.user,
        User {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 4]
        }
    );
    let binds: Vec<(&str, bool)> = pod
        .binds
        .iter()
        .map(|b| (b.destination.as_str(), b.readonly))
        .collect();
    assert_eq!(
        binds,
        [
            ("/etc/hosts", false),
            ("/dev/termination-log", false),
            ("/var/run/secrets/kubernetes.io/serviceaccount", true),
            ("/cache", false),
        ]
    );
    assert_eq!(pod.binds[0].source, bundle.path().join("hosts"));
    let notes = noted(&mapped);
    for at in [
        "mounts[11]",
        "linux.namespaces[1].path",
        "linux.namespaces[4].path",
        "linux.resources",
    ] {
        assert!(notes.iter().any(|n| n == at), "{at} not noted: {notes:?}");
    }
    // The command is validated as every config is.
    assert_eq!(mapped.vm.get_config().args, ["-c", "echo hi"]);
}

#[test]
fn a_pod_container_bind_that_cannot_be_honoured_is_refused_at_its_field() {
    let bundle = Bundle::new();
    let spec = with(
        container_spec(&bundle),
        "/mounts/9/options/2",
        json!("noexec"),
    );
    assert_eq!(
        refused_as(&spec, &bundle, Role::PodContainer).0,
        "mounts[9].options[2]"
    );
    let spec = with(
        container_spec(&bundle),
        "/mounts/9/source",
        json!("relative"),
    );
    assert_eq!(
        refused_as(&spec, &bundle, Role::PodContainer).0,
        "mounts[9].source"
    );
    let spec = with(
        container_spec(&bundle),
        "/mounts/9/source",
        json!("/dev/null"),
    );
    let (at, message) = refused_as(&spec, &bundle, Role::PodContainer);
    assert_eq!(at, "mounts[9].source");
    assert!(
        message.contains("neither a file nor a directory"),
        "{message}"
    );
    let spec = with(
        container_spec(&bundle),
        "/process/user/uid",
        json!(1u64 << 40),
    );
    assert_eq!(
        refused_as(&spec, &bundle, Role::PodContainer).0,
        "process.user"
    );
}

#[test]
fn a_sandbox_vm_is_sized_by_the_pods_annotations() {
    let bundle = Bundle::new();
    let mut spec = sandbox_spec(&bundle);
    spec = with(
        spec,
        "/annotations",
        json!({
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-memory": "536870912",
            "io.kubernetes.cri.sandbox-cpu-quota": "150000",
            "io.kubernetes.cri.sandbox-cpu-period": "100000",
        }),
    );
    let config = map_as(&spec, &bundle, Role::Sandbox)
        .vm
        .get_config()
        .clone();
    assert_eq!((config.ram_mib, config.num_vcpus), (512, 2));
    // No limits in the pod: monocore's defaults.
    let spec = with(
        spec,
        "/annotations/io.kubernetes.cri.sandbox-memory",
        json!("0"),
    );
    let spec = with(
        spec,
        "/annotations/io.kubernetes.cri.sandbox-cpu-quota",
        json!("0"),
    );
    let config = map_as(&spec, &bundle, Role::Sandbox)
        .vm
        .get_config()
        .clone();
    assert_eq!(
        (config.ram_mib, config.num_vcpus),
        (DEFAULT_RAM_MIB, DEFAULT_NUM_VCPUS)
    );
    let bad = with(
        spec,
        "/annotations/io.kubernetes.cri.sandbox-memory",
        json!("lots"),
    );
    let (at, message) = refused_as(&bad, &bundle, Role::Sandbox);
    assert_eq!(at, "annotations.io.kubernetes.cri.sandbox-memory");
    assert!(message.contains("\"lots\""), "{message}");
}
