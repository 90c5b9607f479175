//! `exec` in a pod VM's container as `kubectl exec -it` asks for it: with
//! a terminal, through containerd (`ctr task exec -t`, run on a
//! pseudo-terminal of its own by `script`), next to `ExecSync`'s pipes; and
//! as kubelet serves `kubectl exec`: the CRI `Exec` and its streams through
//! the CRI plugin's streaming server, with and without a terminal.
//! Boots a VM (~20 s on `kvm_pvm`); skips loudly where a CRI test or a boot
//! cannot run (and fails under `MONOCORE_REQUIRE_BOOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use support::{
    BOOT_TIMEOUT, ContainerdVersion, IMAGE,
    cni::POD_IP,
    cri::{Cri, MONOCORE, NAMESPACE, may_run_cri},
    cri_log::{self, Stream},
    cri_stream::ExecStream,
    may_boot, serial,
};

#[test]
fn an_exec_with_a_terminal_gets_one_and_one_without_gets_pipes() {
    let test = "an_exec_with_a_terminal_gets_one_and_one_without_gets_pipes";
    if !may_run_cri(test, MONOCORE, ContainerdVersion::V1_6) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let cri = Cri::start(&[]);
    let (pod_id, id) = shell_pod(&cri, "exec-pod");

    // With a terminal: `ctr` needs one of its own, which `script` gives it.
    let socket = cri.dir().join("containerd.sock");
    let ctr = format!(
        "ctr --address {} -n {NAMESPACE} task exec -t --exec-id tty-1 {id} /bin/sh -c 'tty; stty rows 33 cols 101; stty size; echo out; echo err >&2; exit 5'",
        socket.display()
    );
    // Its input stays open (and silent) until it has ended.
    let mut child = Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take();
    let output = child.wait_with_output().unwrap();
    drop(input);
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    // The command's terminal (one whose size `stty` sets and reads: ctr
    // resizes it to its own, 0x0 under `script` without a terminal, which
    // busybox's `stty size` reports as an error), its stderr on it too,
    // and its exit code as ctr's (script's).
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{lines:?}"
    );
    assert_eq!(
        lines.get(1..),
        Some(&["33 101", "out", "err"][..]),
        "{lines:?}"
    );
    assert_eq!(
        output.status.code(),
        Some(5),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Without: pipes, stdout and stderr apart, the exit code.
    let exec = cri
        .client()
        .exec_sync(
            &id,
            &["/bin/sh", "-c", "tty; echo err >&2; exit 4"],
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "not a tty\n");
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "err\n");
    assert_eq!(exec.exit_code, 4);

    kubectl_exec_streams(&cri, &id);

    remove_and_stop(cri, &pod_id);
}

#[test]
fn kubectl_exec_streams_through_containerd_2() {
    let test = "kubectl_exec_streams_through_containerd_2";
    if !may_run_cri(test, MONOCORE, ContainerdVersion::V2_1) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let cri = Cri::start_with(ContainerdVersion::V2_1, &[]);
    let (pod_id, id) = shell_pod(&cri, "exec-pod-2");
    kubectl_exec_streams(&cri, &id);
    remove_and_stop(cri, &pod_id);
}

/// A pod `name` whose container `shell` runs (it printed `up`): the pod's
/// and the container's ids.
fn shell_pod(cri: &Cri, name: &str) -> (String, String) {
    let pod = cri.pod(name, 1);
    let pod_id = cri.run_pod(&pod, MONOCORE).unwrap();
    pod.write_hosts_file(POD_IP);
    let config = pod
        .container("shell", &cri.image_ref(), IMAGE)
        .command(&["/bin/sh", "-c", "echo up; exec sleep 600"])
        .build();
    let id = cri
        .client()
        .create_container(&pod_id, &config, &pod.sandbox_config())
        .unwrap();
    cri.client().start_container(&id).unwrap();
    cri_log::wait_for_line(&pod.log_file("shell"), Stream::Stdout, "up", BOOT_TIMEOUT);
    (pod_id, id)
}

/// Stops and removes pod `pod_id`, stops containerd, and checks that
/// nothing is left.
fn remove_and_stop(mut cri: Cri, pod_id: &str) {
    cri.client().stop_pod_sandbox(pod_id).unwrap();
    cri.client().remove_pod_sandbox(pod_id).unwrap();
    cri.assert_nothing_left();
    cri.containerd_mut().stop();
    cri.containerd().assert_nothing_left();
}

/// What `kubectl exec` does: the CRI `Exec`, then its streams through the
/// CRI plugin's streaming server (a WebSocket on 127.0.0.1): input, output
/// and the exit code, with and without a terminal, and a terminal's
/// resize.
fn kubectl_exec_streams(cri: &Cri, id: &str) {
    // `kubectl exec -it`: the input is read on the terminal, the resize
    // reaches it (waited for: the streaming server applies resizes and
    // input from two goroutines, in either order).
    let script = "read line; echo got-$line; tty; i=0; \
        until [ \"$(stty size)\" = \"33 101\" ] || [ $i = 30 ]; do sleep 1; i=$((i+1)); done; \
        stty size; exit 3";
    let url = cri
        .client()
        .exec(id, &["/bin/sh", "-c", script], true)
        .unwrap();
    let mut stream = ExecStream::connect(&url);
    stream.resize(33, 101);
    stream.stdin(b"go\n");
    let streams = stream.finish();
    let text = String::from_utf8_lossy(&streams.stdout).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"got-go"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "{lines:?}"
    );
    assert_eq!(lines.last(), Some(&"33 101"), "{lines:?}");
    assert!(streams.stderr.is_empty());
    assert_eq!(streams.exit_code(), Some(3), "{}", streams.status);

    // `kubectl exec -i`: pipes, stdout and stderr apart.
    let script = "read line; echo out-$line; echo err >&2; tty; exit 4";
    let url = cri
        .client()
        .exec(id, &["/bin/sh", "-c", script], false)
        .unwrap();
    let mut stream = ExecStream::connect(&url);
    stream.stdin(b"x\n");
    let streams = stream.finish();
    assert_eq!(
        String::from_utf8_lossy(&streams.stdout),
        "out-x\nnot a tty\n"
    );
    assert_eq!(String::from_utf8_lossy(&streams.stderr), "err\n");
    assert_eq!(streams.exit_code(), Some(4), "{}", streams.status);
}
