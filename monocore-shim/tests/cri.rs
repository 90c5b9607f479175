//! Kubernetes pods through containerd's CRI plugin, driven as kubelet
//! drives them: a CRI client of our own (`support::cri_client`) calls what
//! kubelet calls, in kubelet's order, with kubelet's requests
//! (`support::kubelet`), against a private containerd with the CRI plugin
//! on and a CNI network that keeps the pod offline (`support::cri`,
//! `support::cni`). The scenario is one function, [`pod_lifecycle`],
//! parameterised by the runtime handler (`monocore`, and `runc`, the
//! reference, which proves the harness) and by the containerd: Debian
//! bookworm's 1.6, and forky's 2.1.9 (which `scripts/setup.sh` unpacks into
//! `/opt/monocore/containerd-2.1.9`; config version 3, the CRI plugin split
//! in three).
//!
//! Each test ends by checking that nothing is left: no pod or container
//! (CRI, `ctr`), no process in a pod's cgroup or network namespace, no
//! container cgroup, no network namespace, no shim socket, no process of
//! the private containerd's, no mount. They skip loudly without containerd
//! (1.6, or 2.1.9 where the test needs it), runc, iproute2 or root (and
//! fail, with `MONOCORE_REQUIRE_BOOT=1`, as in CI). They run one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

mod support;

use std::time::{Duration, Instant};

use k8s_cri::v1::{ContainerState, PodSandboxState};
use support::{
    BOOT_TIMEOUT, ContainerdVersion, IMAGE,
    cni::POD_IP,
    cri::{Cri, MONOCORE, RUNC, may_run_cri},
    cri_log::{self, Stream},
    kubelet::{
        CPU_MILLIS, DNS_SEARCHES, DNS_SERVER, MEMORY_LIMIT, SERVICE_ACCOUNT_PATH, SHARED_PATH,
        TOKEN,
    },
    may_boot, serial,
};

/// A runtime handler, and what its containers can be expected to see.
struct Handler {
    /// The handler's name in the CRI plugin's config (a RuntimeClass's
    /// `handler`).
    name: &'static str,
    /// Whether the containers are in the pod's network namespace (an `eth0`
    /// with the pod's IP).
    sees_pod_network: bool,
}

/// runc, the reference: the scenario passes with it, so a failure with
/// another handler is that handler's. (A `monocore` handler joins once the
/// shim runs pods: one VM per pod, its containers inside.)
const RUNC_HANDLER: Handler = Handler {
    name: RUNC,
    sees_pod_network: true,
};

/// The first container's script: what it sees of the pod, on stdout, one
/// fact a line; a line on stderr; a file in the shared `emptyDir`; its
/// termination message.
const FIRST: &str = r#"echo "hostname: $(hostname) $(cat /etc/hostname)"
echo "env: $GREETING, $POD_NAME"
echo "cwd: $(pwd)"
echo "hosts: $(tail -n 1 /etc/hosts)"
while read -r line; do echo "resolv.conf: $line"; done </etc/resolv.conf
echo "token: $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
touch /var/run/secrets/kubernetes.io/serviceaccount/new 2>&1 || true
echo "from first" >/shared/from-first
echo "first done" >/dev/termination-log
echo "to stderr" >&2"#;

/// The second container's script: reads what the first left, says it is
/// ready, and ends on SIGTERM.
const SECOND: &str = r#"trap 'echo "second: TERM"; exit 0' TERM
echo "second: $(cat /shared/from-first)"
echo "second ready"
sleep 600 &
wait"#;

/// The annotation that tells a pod's sandbox from its containers.
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// The annotation that names a container's pod sandbox.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The string at `path` in the JSON `value` (`""` where there is none).
fn field<'a>(value: &'a serde_json::Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// Writes `spec` as `<dir>/<name>` when `MONOCORE_CRI_SPEC_DUMP_DIR` names
/// a directory (to read what the CRI plugin asks of a runtime).
fn dump_spec(name: &str, spec: &serde_json::Value) {
    if let Some(dir) = std::env::var_os("MONOCORE_CRI_SPEC_DUMP_DIR") {
        let text = serde_json::to_string_pretty(spec).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), text + "\n").unwrap();
    }
}

/// What kubelet does for a pod of two containers, in its order, under
/// containerd `version`, checking each answer and what the containers saw;
/// then that nothing is left.
fn pod_lifecycle(handler: &Handler, containerd_version: ContainerdVersion) {
    let mut cri = Cri::start_with(containerd_version, &[]);
    let client = cri.client();
    let version = client.version().unwrap();
    assert_eq!(
        (
            version.runtime_name.as_str(),
            version.runtime_api_version.as_str()
        ),
        ("containerd", "v1")
    );
    assert_eq!(version.version, "0.1.0");
    assert!(
        version
            .runtime_version
            .starts_with(containerd_version.release_prefix()),
        "{version:?}"
    );
    // kubelet asks for the image's status (and pulls it when absent).
    let image = cri.image_ref();
    let pod = cri.pod("hello-pod", 2);
    let sandbox = pod.sandbox_config();
    let pod_id = cri
        .run_pod(&pod, handler.name)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}\n{}", cri.containerd().log_tail()));

    let status = client
        .pod_sandbox_status(&pod_id, false)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.state(), PodSandboxState::SandboxReady);
    assert_eq!(status.network.as_ref().unwrap().ip, POD_IP);
    assert_eq!(status.metadata, sandbox.metadata);
    assert_eq!(status.labels, pod.labels());
    assert_eq!(status.annotations, pod.annotations());
    assert_eq!(status.runtime_handler, handler.name);
    // The sandbox's OCI spec, as the runtime gets it.
    let spec = cri.spec(&pod_id);
    dump_spec("sandbox-config.json", &spec);
    assert_eq!(field(&spec, &["annotations", CONTAINER_TYPE]), "sandbox");
    assert_eq!(field(&spec, &["annotations", SANDBOX_ID]), pod_id);
    assert_eq!(field(&spec, &["hostname"]), "hello-pod");
    // containerd 2 lets a pod's unprivileged processes bind low ports and
    // ping by default (sysctls the shim notes; see `spec::linux`); 1.6
    // does not.
    let sysctl = |name: &str| field(&spec, &["linux", "sysctl", name]).to_owned();
    let unprivileged = match containerd_version {
        ContainerdVersion::V1_6 => ["", ""],
        ContainerdVersion::V2_1 => ["0", "0 2147483647"],
    };
    assert_eq!(
        [
            sysctl("net.ipv4.ip_unprivileged_port_start"),
            sysctl("net.ipv4.ping_group_range")
        ],
        unprivileged
    );

    // kubelet writes the pod's hosts file once it knows the pod's IP.
    pod.write_hosts_file(POD_IP);
    let first = pod
        .container("first", &image, IMAGE)
        .command(&["/bin/sh", "-c"])
        .args(&[FIRST])
        .working_dir("/tmp")
        .env("GREETING", "hello from a pod")
        .build();
    let first_id = client
        .create_container(&pod_id, &first, &sandbox)
        .unwrap_or_else(|e| panic!("CreateContainer: {e:?}\n{}", cri.containerd().log_tail()));
    let spec = cri.spec(&first_id);
    dump_spec("container-config.json", &spec);
    assert_eq!(field(&spec, &["annotations", CONTAINER_TYPE]), "container");
    assert_eq!(field(&spec, &["annotations", SANDBOX_ID]), pod_id);
    client
        .start_container(&first_id)
        .unwrap_or_else(|e| panic!("StartContainer: {e:?}\n{}", cri.containerd().log_tail()));
    let status = cri.wait_container(&first_id, ContainerState::ContainerExited, BOOT_TIMEOUT);
    let log_file = pod.log_file("first");
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (0, "Completed"),
        "{status:#?}\n{:#?}",
        cri_log::read(&log_file)
    );
    assert_eq!(status.log_path, log_file.to_str().unwrap());
    // Both streams' last lines (each stream is copied on its own).
    let last = format!("touch: {SERVICE_ACCOUNT_PATH}/new: Read-only file system");
    cri_log::wait_for_line(&log_file, Stream::Stdout, &last, Duration::from_secs(10));
    let entries = cri_log::wait_for_line(
        &log_file,
        Stream::Stderr,
        "to stderr",
        Duration::from_secs(10),
    );
    let mut expected = vec![
        "hostname: hello-pod hello-pod".to_owned(),
        "env: hello from a pod, hello-pod".to_owned(),
        "cwd: /tmp".to_owned(),
        format!("hosts: {POD_IP}\thello-pod"),
        format!("resolv.conf: search {}", DNS_SEARCHES.join(" ")),
        format!("resolv.conf: nameserver {DNS_SERVER}"),
        "resolv.conf: options ndots:5".to_owned(),
        format!("token: {TOKEN}"),
        last,
    ];
    assert_eq!(cri_log::lines(&entries, Stream::Stdout), expected);
    assert_eq!(cri_log::lines(&entries, Stream::Stderr), ["to stderr"]);
    // Guest writes reached the host: the termination log, the emptyDir.
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();
    assert_eq!(read(pod.termination_log("first")), "first done\n");
    assert_eq!(read(pod.empty_dir().join("from-first")), "from first\n");
    assert!(!pod.service_account_dir().join("new").exists());

    // A second container in the same pod sees the first's emptyDir file.
    let second = pod
        .container("second", &image, IMAGE)
        .command(&["/bin/sh", "-c", SECOND])
        .build();
    let second_id = client.create_container(&pod_id, &second, &sandbox).unwrap();
    client.start_container(&second_id).unwrap_or_else(|e| {
        panic!(
            "StartContainer second: {e:?}\n{}",
            cri.containerd().log_tail()
        )
    });
    let entries = cri_log::wait_for_line(
        &pod.log_file("second"),
        Stream::Stdout,
        "second ready",
        BOOT_TIMEOUT,
    );
    assert_eq!(
        cri_log::lines(&entries, Stream::Stdout),
        ["second: from first", "second ready"]
    );
    assert_eq!(
        cri.wait_container(&second_id, ContainerState::ContainerRunning, Duration::ZERO)
            .exit_code,
        0
    );
    // What the final checks look for is there while the pod runs: its
    // processes (in its cgroup or network namespace), its network
    // namespace.
    assert!(!cri.pod_processes().is_empty(), "no process in the pod");
    // containerd started the shims: the handler's, and for runc the runc
    // shim of containerd's own release (2.1.9's is beside its containerd).
    let shims = cri.containerd().shim_executables();
    assert!(!shims.is_empty(), "no shim runs");
    let own = cri
        .containerd()
        .executable()
        .with_file_name("containerd-shim-runc-v2");
    for shim in shims {
        assert!(
            shim == own || shim.ends_with("containerd-shim-monocore-v1"),
            "shim {} is not {} nor monocore's",
            shim.display(),
            own.display()
        );
    }
    let netns: Vec<_> = std::fs::read_dir(cri.netns_dir()).unwrap().collect();
    assert_eq!(netns.len(), 1, "{netns:?}");
    // ContainerStats: the memory the container's VM (monocore) or cgroup
    // (runc) uses, as kubelet's summary reads it.
    let stats = client.container_stats(&second_id).unwrap();
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map_or(0, |v| v.value);
    assert!(memory > 0, "{stats:#?}");
    // A VM's size is fixed at boot: an update is refused, with the reason.
    if handler.name == MONOCORE {
        let refused = client.update_memory(&second_id, 512 << 20).unwrap_err();
        assert!(
            refused
                .message()
                .contains("a microVM's RAM and vCPUs are fixed when it boots"),
            "{refused:?}"
        );
    }
    // ExecSync: stdout, stderr and the exit code, apart.
    let exec = client
        .exec_sync(
            &second_id,
            &[
                "/bin/sh",
                "-c",
                "hostname; cat /shared/from-first; ip addr show dev eth0 2>/dev/null | grep -o 'inet [0-9./]*'; echo oops >&2; exit 3",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    expected = vec!["hello-pod".to_owned(), "from first".to_owned()];
    if handler.sees_pod_network {
        expected.push(format!("inet {POD_IP}/8"));
    }
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout)
            .lines()
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "oops\n");
    assert_eq!(exec.exit_code, 3);

    // kubelet stops the running container (SIGTERM, grace period), then
    // the sandbox; its garbage collector removes the exited container, and
    // the sandbox with what is left in it.
    let started = Instant::now();
    client
        .stop_container(&second_id, Duration::from_secs(30))
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "SIGTERM was not enough"
    );
    let status = cri.wait_container(&second_id, ContainerState::ContainerExited, Duration::ZERO);
    assert_eq!((status.exit_code, status.reason.as_str()), (0, "Completed"));
    cri_log::wait_for_line(
        &pod.log_file("second"),
        Stream::Stdout,
        "second: TERM",
        Duration::from_secs(10),
    );
    client.stop_pod_sandbox(&pod_id).unwrap();
    let status = client
        .pod_sandbox_status(&pod_id, false)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.state(), PodSandboxState::SandboxNotready);
    client.remove_container(&first_id).unwrap();
    client.remove_pod_sandbox(&pod_id).unwrap();
    let gone = client.pod_sandbox_status(&pod_id, false).unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    cri.assert_nothing_left();
    cri.containerd_mut().stop();
    cri.containerd().assert_nothing_left();
}

/// monocore: one microVM per pod, its containers inside through the
/// agent; the pod is networkless until networking lands.
const MONOCORE_HANDLER: Handler = Handler {
    name: MONOCORE,
    sees_pod_network: false,
};

#[test]
fn a_pod_runs_as_kubelet_runs_it_in_one_microvm() {
    let test = "a_pod_runs_as_kubelet_runs_it_in_one_microvm";
    if !may_run_cri(test, MONOCORE, ContainerdVersion::V1_6) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    pod_lifecycle(&MONOCORE_HANDLER, ContainerdVersion::V1_6);
}

#[test]
fn a_pod_runs_as_kubelet_runs_it_with_runc() {
    let test = "a_pod_runs_as_kubelet_runs_it_with_runc";
    if !may_run_cri(test, RUNC, ContainerdVersion::V1_6) {
        return;
    }
    let _serial = serial();
    pod_lifecycle(&RUNC_HANDLER, ContainerdVersion::V1_6);
}

#[test]
fn a_pod_runs_as_kubelet_runs_it_in_one_microvm_with_containerd_2() {
    let test = "a_pod_runs_as_kubelet_runs_it_in_one_microvm_with_containerd_2";
    if !may_run_cri(test, MONOCORE, ContainerdVersion::V2_1) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    pod_lifecycle(&MONOCORE_HANDLER, ContainerdVersion::V2_1);
}

#[test]
fn a_pod_runs_as_kubelet_runs_it_with_runc_and_containerd_2() {
    let test = "a_pod_runs_as_kubelet_runs_it_with_runc_and_containerd_2";
    if !may_run_cri(test, RUNC, ContainerdVersion::V2_1) {
        return;
    }
    let _serial = serial();
    pod_lifecycle(&RUNC_HANDLER, ContainerdVersion::V2_1);
}

/// The README's pod (section "RuntimeClass and a pod") is the one
/// [`pod_lifecycle`] runs: its name and hostname, DNS config, limits,
/// volume, and each container's script, line for line.
#[test]
fn the_readme_pod_is_the_one_the_scenario_runs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("### RuntimeClass and a pod")
        .nth(1)
        .and_then(|rest| rest.split("```yaml").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README has the pod's YAML");
    let yaml: Vec<&str> = section.lines().map(str::trim).collect();
    let has = |line: &str| assert!(yaml.contains(&line), "the README's pod lacks `{line}`");
    let searches = DNS_SEARCHES.map(|d| format!("\"{d}\"")).join(", ");
    for line in [
        "name: hello-pod".to_owned(),
        "hostname: hello-pod".to_owned(),
        format!("nameservers: [\"{DNS_SERVER}\"]"),
        format!("searches: [{searches}]"),
        "options: [{name: ndots, value: \"5\"}]".to_owned(),
        "- name: first          # says what it sees of the pod, leaves a file, exits 0".to_owned(),
        "workingDir: /tmp".to_owned(),
        "- {name: GREETING, value: hello from a pod}".to_owned(),
        format!("volumeMounts: [{{name: shared, mountPath: {SHARED_PATH}}}]"),
        format!(
            "limits: {{memory: {}Mi, cpu: {CPU_MILLIS}m}}",
            MEMORY_LIMIT >> 20
        ),
    ] {
        has(&line);
    }
    // Each script, line for line and in order, as a YAML block.
    for script in [FIRST, SECOND] {
        let first = script.lines().next().unwrap();
        let at = yaml
            .iter()
            .position(|l| *l == first)
            .expect("the script's first line");
        let lines: Vec<&str> = script.lines().map(str::trim).collect();
        assert_eq!(
            yaml[at..at + lines.len()],
            lines[..],
            "the README's script differs"
        );
    }
}

/// The CRI log reader, on lines containerd writes and on lines it must
/// refuse.
mod log_format {
    use super::support::cri_log::{LogEntry, Stream, lines, parse, parse_line};

    #[test]
    fn a_full_line_parses_into_its_four_fields() {
        assert_eq!(
            parse_line("2026-12-06T20:44:27.600469551Z stdout F hello world").unwrap(),
            LogEntry {
                time: "2026-12-06T20:44:27.600469551Z".to_owned(),
                stream: Stream::Stdout,
                partial: false,
                text: "hello world".to_owned(),
            }
        );
    }

    #[test]
    fn times_as_go_writes_them_parse() {
        // RFC3339Nano drops trailing zeros, and the fraction when it is 0;
        // the zone is Z or an offset.
        for time in [
            "2026-12-06T20:44:27Z",
            "2026-12-06T20:44:27.5Z",
            "2026-12-06T20:44:27.123456789+01:00",
            "2026-02-28T23:59:60.1-05:30",
        ] {
            let line = format!("{time} stderr P x");
            assert_eq!(parse_line(&line).unwrap().time, time, "{line}");
        }
    }

    #[test]
    fn an_empty_line_and_spaces_in_the_text_are_kept() {
        let entries =
            parse("2026-12-06T20:44:27Z stdout F \n2026-12-06T20:44:27Z stdout F  a  b \n")
                .unwrap();
        assert_eq!(lines(&entries, Stream::Stdout), ["", " a  b "]);
    }

    #[test]
    fn partial_entries_join_the_next_of_their_stream() {
        let entries = parse(concat!(
            "2026-12-06T20:44:27Z stdout P hel\n",
            "2026-12-06T20:44:27Z stderr F err\n",
            "2026-12-06T20:44:28Z stdout F lo\n",
            "2026-12-06T20:44:28Z stdout P unfinished\n",
        ))
        .unwrap();
        assert_eq!(lines(&entries, Stream::Stdout), ["hello"]);
        assert_eq!(lines(&entries, Stream::Stderr), ["err"]);
    }

    #[test]
    fn malformed_lines_are_refused_with_the_reason() {
        for (line, reason) in [
            ("hello", "four space-separated fields"),
            (
                "2026-12-06T20:44:27Z stdout F",
                "four space-separated fields",
            ),
            (
                "2026-12-06 20:44:27Z stdout F x",
                "time \"2026-12-06\": expected 'T' at 10",
            ),
            (
                "2026-12-06T20:44:27 stdout F x",
                "expected `Z` or `±HH:MM` at 19",
            ),
            ("2026-12-06T20:44:27.Z stdout F x", "0 fractional digits"),
            (
                "2026-12-06T20:44:27.1234567890Z stdout F x",
                "10 fractional digits",
            ),
            ("2026-13-06T20:44:27Z stdout F x", "month 13 is over 12"),
            ("2026-12-06T24:44:27Z stdout F x", "hour 24 is over 23"),
            (
                "2026-12-06T20:44:27+0100 stdout F x",
                "expected `Z` or `±HH:MM`",
            ),
            ("2026-12-06t20:44:27Z stdout F x", "expected 'T' at 10"),
            ("2026-12-06T20:44:27Z stdin F x", "stream \"stdin\""),
            ("2026-12-06T20:44:27Z stdout X x", "tag \"X\""),
            ("2026-12-06T20:44:27Z stdout F:P x", "tag \"F:P\""),
        ] {
            let error = parse_line(line).unwrap_err();
            assert!(error.contains(reason), "{line:?}: {error}");
        }
    }

    #[test]
    fn a_log_names_its_bad_line_and_wants_a_final_newline() {
        let error = parse("2026-12-06T20:44:27Z stdout F a\nbad\n").unwrap_err();
        assert!(error.starts_with("line 2: "), "{error}");
        let error = parse("2026-12-06T20:44:27Z stdout F a").unwrap_err();
        assert!(error.contains("no newline"), "{error}");
    }
}
