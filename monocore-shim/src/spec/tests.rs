use std::path::Path;

use monocore::{
    config::{EnvPair, limits::MAX_VCPUS},
    vm::{LinuxRlimit, LinuxRlimitResource},
};
use serde_json::{Value, json};

use super::{mounts::STANDARD_MOUNTS, *};

/// A bundle with an empty `rootfs` and a directory and a file to bind.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self, name: &str) -> String {
        self.path().join(name).to_str().unwrap().to_owned()
    }
}

/// What `ctr run` puts in `config.json` (containerd 1.6's default spec,
/// as `ctr container info` shows it), with a command, an environment and a
/// working directory.
fn ctr_spec() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0, "additionalGids": [0]},
            "args": ["/bin/sh", "-c", "echo hi"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=a=b"],
            "cwd": "/work",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "resources": {"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}
            ]},
            "cgroupsPath": "/default/test",
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    })
}

/// `spec` with the value at `pointer` (`/a/b/0/c`) set, objects made as
/// needed.
fn with(mut spec: Value, pointer: &str, value: Value) -> Value {
    let mut at = &mut spec;
    let mut keys = pointer.split('/').skip(1).peekable();
    while let Some(key) = keys.next() {
        let last = keys.peek().is_none();
        at = match at {
            Value::Array(items) => {
                let index = key.parse::<usize>().unwrap();
                if index == items.len() {
                    items.push(json!({}));
                }
                &mut items[index]
            }
            Value::Object(map) => map.entry(key).or_insert(json!({})),
            other => panic!("cannot descend into {other}"),
        };
        if last {
            *at = value;
            break;
        }
    }
    spec
}

fn map_ok(spec: &Value, bundle: &Bundle) -> Mapped {
    map(spec, bundle.path(), super::Role::Standalone)
        .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)))
}

/// The refusal for `spec`: its field path and its message.
fn refusal(spec: &Value, bundle: &Bundle) -> (String, String) {
    match map(spec, bundle.path(), super::Role::Standalone) {
        Err(SpecError::Refused { at, refusal }) => (at.to_string(), refusal.to_string()),
        Err(other) => panic!("not a refusal: {other}"),
        Ok(mapped) => panic!("accepted: {:?}", mapped.vm.get_config()),
    }
}

#[test]
fn the_ctr_default_spec_maps_every_field() {
    let bundle = Bundle::new();
    let mapped = map_ok(&ctr_spec(), &bundle);
    let config = mapped.vm.get_config();
    assert_eq!(config.root_path, bundle.path().join("rootfs"));
    assert_eq!(config.exec_path.as_ref().unwrap().as_str(), "/bin/sh");
    assert_eq!(config.args, ["-c", "echo hi"]);
    assert_eq!(
        config.env,
        [
            EnvPair::new("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            EnvPair::new("GREETING", "a=b")
        ]
    );
    assert_eq!(config.workdir_path.as_ref().unwrap().as_str(), "/work");
    assert_eq!(
        config.rlimits,
        [LinuxRlimit::new(
            LinuxRlimitResource::RLIMIT_NOFILE,
            512,
            1024
        )]
    );
    // No limits in the spec: the documented defaults. No network, ever.
    assert_eq!(config.ram_mib, DEFAULT_RAM_MIB);
    assert_eq!(config.num_vcpus, DEFAULT_NUM_VCPUS);
    assert!(config.mapped_dirs.is_empty());
    assert!(config.local_only);
    assert!(config.port_map.is_empty());
    // What was accepted without being applied is said, field by field.
    let noted: Vec<String> = mapped
        .notes
        .entries()
        .iter()
        .map(|(at, _)| at.to_string())
        .collect();
    assert_eq!(
        noted,
        [
            "process.user.additionalGids",
            "process.capabilities",
            "process.noNewPrivileges",
            "mounts[0]",
            "mounts[1]",
            "mounts[2]",
            "mounts[3]",
            "mounts[4]",
            "mounts[5]",
            "mounts[6]",
            "linux.cgroupsPath",
            "linux.maskedPaths",
            "linux.readonlyPaths",
        ]
    );
}

#[test]
fn the_root_is_relative_to_the_bundle_or_absolute() {
    let bundle = Bundle::new();
    let absolute = bundle.host("data");
    let spec = with(ctr_spec(), "/root/path", json!(absolute));
    assert_eq!(
        map_ok(&spec, &bundle).vm.get_config().root_path,
        Path::new(&absolute)
    );
    let spec = with(ctr_spec(), "/root/readonly", json!(false));
    map_ok(&spec, &bundle);
}

#[test]
fn the_memory_limit_is_the_ram_rounded_up_to_whole_mib() {
    let bundle = Bundle::new();
    let ram = |limit: Value| {
        let spec = with(ctr_spec(), "/linux/resources/memory/limit", limit);
        map_ok(&spec, &bundle).vm.get_config().ram_mib
    };
    assert_eq!(ram(json!(256 << 20)), 256);
    assert_eq!(ram(json!((256 << 20) + 1)), 257);
    assert_eq!(ram(json!(-1)), DEFAULT_RAM_MIB);
    let spec = with(ctr_spec(), "/linux/resources/memory/swap", json!(512 << 20));
    let mapped = map_ok(&spec, &bundle);
    assert!(
        mapped
            .notes
            .entries()
            .iter()
            .any(|(at, _)| at.to_string() == "linux.resources.memory.swap")
    );
}

#[test]
fn the_cpu_quota_is_the_vcpu_count_rounded_up() {
    let bundle = Bundle::new();
    let vcpus = |quota: Value, period: Option<u64>| {
        let mut spec = with(ctr_spec(), "/linux/resources/cpu/quota", quota);
        if let Some(period) = period {
            spec = with(spec, "/linux/resources/cpu/period", json!(period));
        }
        map_ok(&spec, &bundle).vm.get_config().num_vcpus
    };
    assert_eq!(vcpus(json!(200_000), Some(100_000)), 2);
    assert_eq!(vcpus(json!(150_000), Some(100_000)), 2);
    assert_eq!(vcpus(json!(50_000), Some(100_000)), 1);
    // No period: the OCI default, 100 ms.
    assert_eq!(vcpus(json!(300_000), None), 3);
    assert_eq!(vcpus(json!(-1), Some(100_000)), DEFAULT_NUM_VCPUS);
    // Shares are a relative weight: noted, not applied.
    let spec = with(ctr_spec(), "/linux/resources/cpu/shares", json!(1024));
    assert!(
        map_ok(&spec, &bundle)
            .notes
            .entries()
            .iter()
            .any(|(at, _)| at.to_string() == "linux.resources.cpu.shares")
    );
}

#[test]
fn directory_bind_mounts_are_mapped_dirs() {
    let bundle = Bundle::new();
    let data = bundle.host("data");
    let spec = with(
        ctr_spec(),
        "/mounts/7",
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rprivate", "rw"]}),
    );
    let config = map_ok(&spec, &bundle).vm.into_config();
    assert_eq!(config.mapped_dirs.len(), 1);
    assert_eq!(config.mapped_dirs[0].get_host().as_str(), data);
    assert_eq!(config.mapped_dirs[0].get_guest().as_str(), "/data");
    // A bind given by its options alone (type `none`) is one too.
    let spec = with(
        ctr_spec(),
        "/mounts/7",
        json!({"destination": "/data", "type": "none", "source": data, "options": ["bind"]}),
    );
    assert_eq!(map_ok(&spec, &bundle).vm.get_config().mapped_dirs.len(), 1);
}

#[test]
fn every_standard_mount_is_accepted_and_noted() {
    let bundle = Bundle::new();
    for (i, (destination, kind, _)) in STANDARD_MOUNTS.iter().enumerate() {
        let spec = with(
            ctr_spec(),
            "/mounts",
            json!([{"destination": destination, "type": kind, "source": kind}]),
        );
        let notes = map_ok(&spec, &bundle).notes;
        assert!(
            notes
                .entries()
                .iter()
                .any(|(at, _)| at.to_string() == "mounts[0]"),
            "standard mount {i} not noted"
        );
    }
}

/// Every refused field, with its path and its message.
#[test]
fn every_refused_field_names_itself_and_says_why() {
    let bundle = Bundle::new();
    let file = bundle.host("hosts");
    let data = bundle.host("data");
    let bind = |source: &str, options: Value| json!({"destination": "/data", "type": "bind", "source": source, "options": options});
    let cases: Vec<(Value, &str, String)> = vec![
        (
            with(ctr_spec(), "/process/terminal", json!(true)),
            "process.terminal",
            "a terminal (TTY) is not supported: the guest console is a plain output stream".into(),
        ),
        (
            with(ctr_spec(), "/process/user", json!({"uid": 1000, "gid": 1000})),
            "process.user",
            "the command runs as root (uid 0, gid 0) in the guest; uid 1000, gid 1000 cannot be honoured".into(),
        ),
        (
            with(ctr_spec(), "/process/user/umask", json!(0o77)),
            "process.user.umask",
            "a umask (77) cannot be set for the guest command".into(),
        ),
        (
            with(ctr_spec(), "/process/args", json!([])),
            "process.args",
            "no command to run: the list is empty".into(),
        ),
        (
            with(ctr_spec(), "/process/env/1", json!("NOEQUALS")),
            "process.env[1]",
            "`NOEQUALS` is not a NAME=value entry".into(),
        ),
        (
            with(ctr_spec(), "/process/rlimits/0/type", json!("RLIMIT_BOGUS")),
            "process.rlimits[0].type",
            "unknown resource limit `RLIMIT_BOGUS`".into(),
        ),
        (
            with(ctr_spec(), "/process/consoleSize", json!({"height": 24, "width": 80})),
            "process.consoleSize",
            "unknown field: refused rather than ignored, since a microVM may not honour it".into(),
        ),
        (
            with(ctr_spec(), "/root/readonly", json!(true)),
            "root.readonly",
            "a read-only root is not supported: the root is shared with the guest read-write".into(),
        ),
        (
            with(ctr_spec(), "/root", json!({"readonly": false})),
            "root.path",
            "no root directory: the spec must name one (root.path)".into(),
        ),
        (
            with(ctr_spec(), "/hostname", json!("pod-1")),
            "hostname",
            "setting the guest hostname (`pod-1`) is not supported".into(),
        ),
        (
            with(ctr_spec(), "/domainname", json!("example.org")),
            "domainname",
            "setting the guest domain name (`example.org`) is not supported".into(),
        ),
        (
            with(ctr_spec(), "/hooks", json!({"prestart": [{"path": "/bin/true"}]})),
            "hooks",
            r#"OCI hooks ({"prestart":[{"path":"/bin/true"}]}) are not supported: there is no container process on the host to run them for"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/namespaces/4/path", json!("/var/run/netns/cni-1")),
            "linux.namespaces[4].path",
            "joining an existing network namespace (/var/run/netns/cni-1) is impossible: the command runs in the VM's own kernel".into(),
        ),
        (
            with(ctr_spec(), "/linux/namespaces/5", json!({"type": "user"})),
            "linux.namespaces[5].type",
            "user namespaces are not supported: the guest command runs as the guest's root".into(),
        ),
        (
            with(ctr_spec(), "/linux/namespaces/5", json!({"type": "time"})),
            "linux.namespaces[5].type",
            "unknown namespace type `time`".into(),
        ),
        (
            with(ctr_spec(), "/linux/uidMappings", json!([{"containerID": 0, "hostID": 1000, "size": 1}])),
            "linux.uidMappings",
            r#"uid/gid mappings ([{"containerID":0,"hostID":1000,"size":1}]) are not supported: there is no user namespace"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/gidMappings", json!([{"containerID": 0, "hostID": 1000, "size": 1}])),
            "linux.gidMappings",
            r#"uid/gid mappings ([{"containerID":0,"hostID":1000,"size":1}]) are not supported: there is no user namespace"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/devices", json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])),
            "linux.devices[0]",
            "device /dev/fuse cannot be passed to a microVM: the guest has no host devices".into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/devices/10", json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"})),
            "linux.resources.devices[10]",
            r#"allowing device access ({"access":"rwm","allow":true,"major":10,"minor":229,"type":"c"}) is not supported: the guest has no host devices"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/devices/10", json!({"allow": true, "access": "rwm"})),
            "linux.resources.devices[10]",
            r#"allowing device access ({"access":"rwm","allow":true}) is not supported: the guest has no host devices"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/pids", json!({"limit": 100})),
            "linux.resources.pids",
            r#"this limit ({"limit":100}) cannot be applied to a microVM: only memory.limit and cpu.quota/cpu.period are mapped (to RAM and vCPUs)"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/memory/reservation", json!(1 << 20)),
            "linux.resources.memory.reservation",
            "this limit (1048576) cannot be applied to a microVM: only memory.limit and cpu.quota/cpu.period are mapped (to RAM and vCPUs)".into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/cpu/cpus", json!("0-1")),
            "linux.resources.cpu.cpus",
            r#"this limit ("0-1") cannot be applied to a microVM: only memory.limit and cpu.quota/cpu.period are mapped (to RAM and vCPUs)"#.into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/memory/limit", json!(1000)),
            "linux.resources.memory.limit",
            "a memory limit of 1000 bytes is not a RAM size: at least 1 MiB, at most 4 PiB".into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/memory/limit", json!(1_i64 << 53)),
            "linux.resources.memory.limit",
            "a memory limit of 9007199254740992 bytes is not a RAM size: at least 1 MiB, at most 4 PiB".into(),
        ),
        (
            with(ctr_spec(), "/linux/resources/cpu/quota", json!(0)),
            "linux.resources.cpu.quota",
            format!("a CPU quota of 0 µs per 100000 µs is not a vCPU count: both must be positive and the quotient (rounded up) at most {MAX_VCPUS}"),
        ),
        (
            with(with(ctr_spec(), "/linux/resources/cpu/quota", json!(100)), "/linux/resources/cpu/period", json!(0)),
            "linux.resources.cpu.quota",
            format!("a CPU quota of 100 µs per 0 µs is not a vCPU count: both must be positive and the quotient (rounded up) at most {MAX_VCPUS}"),
        ),
        (
            // One more vCPU than libkrun runs (128 on x86_64): refused
            // here, not by validation after the mapping.
            with(ctr_spec(), "/linux/resources/cpu/quota", json!((i64::from(MAX_VCPUS) + 1) * 100_000)),
            "linux.resources.cpu.quota",
            format!("a CPU quota of {} µs per 100000 µs is not a vCPU count: both must be positive and the quotient (rounded up) at most {MAX_VCPUS}", (i64::from(MAX_VCPUS) + 1) * 100_000),
        ),
        (
            with(ctr_spec(), "/linux/resources/cpu/quota", json!(256 * 100_000)),
            "linux.resources.cpu.quota",
            format!("a CPU quota of 25600000 µs per 100000 µs is not a vCPU count: both must be positive and the quotient (rounded up) at most {MAX_VCPUS}"),
        ),
        (
            with(ctr_spec(), "/linux/sysctl", json!({"net.ipv4.ip_forward": "1"})),
            "linux.sysctl.net.ipv4.ip_forward",
            "sysctl `net.ipv4.ip_forward` cannot be set: the guest kernel is not configured from the spec".into(),
        ),
        (
            with(ctr_spec(), "/linux/rootfsPropagation", json!("rslave")),
            "linux.rootfsPropagation",
            "unknown field: refused rather than ignored, since a microVM may not honour it".into(),
        ),
        (
            with(ctr_spec(), "/mounts/7", json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})),
            "mounts[7].type",
            "a `tmpfs` mount at /tmp is not supported: only directory bind mounts and the standard container mounts are".into(),
        ),
        (
            with(ctr_spec(), "/mounts/7", bind(&file, json!(["rbind", "rprivate"]))),
            "mounts[7].source",
            format!("{file} is not a directory: only directories can be shared with a microVM (virtio-fs)"),
        ),
        (
            with(ctr_spec(), "/mounts/7", bind("/no/such/dir", json!(["rbind"]))),
            "mounts[7].source",
            "bind mount source /no/such/dir does not exist".into(),
        ),
        (
            with(ctr_spec(), "/mounts/7", bind("data", json!(["rbind"]))),
            "mounts[7].source",
            "bind mount source `data` is not an absolute host path".into(),
        ),
        (
            with(ctr_spec(), "/mounts/7", bind(&data, json!(["rbind", "ro"]))),
            "mounts[7].options[1]",
            "mount option `ro` cannot be honoured: a shared directory is read-write and private".into(),
        ),
        (
            with(ctr_spec(), "/mounts/7", {
                let mut m = bind(&data, json!(["rbind"]));
                m["uidMappings"] = json!([{"containerID": 0, "hostID": 1, "size": 1}]);
                m
            }),
            "mounts[7].uidMappings",
            r#"uid/gid mappings ([{"containerID":0,"hostID":1,"size":1}]) are not supported: there is no user namespace"#.into(),
        ),
        (
            with(ctr_spec(), "/vm", json!({"hypervisor": {"path": "/bin/qemu"}})),
            "vm",
            "unknown field: refused rather than ignored, since a microVM may not honour it".into(),
        ),
        (
            with(ctr_spec(), "/process/args", json!("/bin/sh")),
            "process.args",
            r#"expected an array, found "/bin/sh""#.into(),
        ),
        (
            with(ctr_spec(), "/process/cwd", json!(7)),
            "process.cwd",
            "expected a string, found 7".into(),
        ),
    ];
    for (spec, at, message) in cases {
        assert_eq!(refusal(&spec, &bundle), (at.to_owned(), message), "{at}");
    }
}

#[test]
fn the_mapped_config_goes_through_monocores_validation() {
    let bundle = Bundle::new();
    // Six directory shares: more than a VM without networking may have.
    let mut spec = ctr_spec();
    for i in 0..6 {
        let dir = bundle.path().join(format!("share{i}"));
        std::fs::create_dir(&dir).unwrap();
        spec = with(
            spec,
            &format!("/mounts/{}", 7 + i),
            json!({"destination": format!("/share{i}"), "type": "bind", "source": dir, "options": ["rbind"]}),
        );
    }
    let err = map(&spec, bundle.path(), super::Role::Standalone).unwrap_err();
    assert!(matches!(err, SpecError::Invalid(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "the microVM config mapped from the spec is invalid"
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("mapped_dirs"), "{source}");

    // A root that does not exist: the host check of `validate`.
    let spec = with(ctr_spec(), "/root/path", json!("no-such-rootfs"));
    let err = map(&spec, bundle.path(), super::Role::Standalone).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("root path does not exist"), "{source}");

    // An empty variable name, from `=value`.
    let spec = with(ctr_spec(), "/process/env/1", json!("=value"));
    assert!(matches!(
        map(&spec, bundle.path(), super::Role::Standalone),
        Err(SpecError::Invalid(_))
    ));
}

#[test]
fn a_missing_or_broken_config_json_says_which_file() {
    let bundle = Bundle::new();
    let err = read(bundle.path(), super::Role::Standalone).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read the OCI runtime spec {}",
            bundle.path().join("config.json").display()
        )
    );
    std::fs::write(bundle.path().join("config.json"), "{").unwrap();
    let err = read(bundle.path(), super::Role::Standalone).unwrap_err();
    assert!(matches!(err, SpecError::Parse { .. }), "{err}");
    std::fs::write(bundle.path().join("config.json"), ctr_spec().to_string()).unwrap();
    assert_eq!(
        read(bundle.path(), super::Role::Standalone)
            .unwrap()
            .vm
            .get_config()
            .args,
        ["-c", "echo hi"]
    );
}

/// A pod container's spec (the pod's hostname, the sandbox's namespaces
/// joined by path, the pod's files bind mounted) given as a container with
/// a VM of its own (without the CRI annotations that make it a pod's) is
/// refused at its first field such a VM cannot honour, never run with those
/// dropped. As a pod's container it runs (`tests/pod.rs`).
#[test]
fn a_kubernetes_container_spec_is_refused_not_run_without_its_pod() {
    let bundle = Bundle::new();
    let hosts = bundle.host("hosts");
    let mut spec = with(ctr_spec(), "/hostname", json!("hello-microvm"));
    spec = with(spec, "/linux/namespaces/4/path", json!("/proc/4242/ns/net"));
    spec = with(
        spec,
        "/mounts/7",
        json!({"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind", "rprivate", "rw"]}),
    );
    assert_eq!(
        refusal(&spec, &bundle),
        (
            "hostname".to_owned(),
            "setting the guest hostname (`hello-microvm`) is not supported".to_owned()
        )
    );
    // Each of the others, alone, is refused too.
    let spec = with(
        ctr_spec(),
        "/linux/namespaces/4/path",
        json!("/proc/4242/ns/net"),
    );
    assert_eq!(refusal(&spec, &bundle).0, "linux.namespaces[4].path");
    let spec = with(
        ctr_spec(),
        "/mounts/7",
        json!({"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind", "rprivate", "rw"]}),
    );
    assert_eq!(refusal(&spec, &bundle).0, "mounts[7].source");
}

mod network;
mod pod;
