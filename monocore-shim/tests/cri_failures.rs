//! What goes wrong in a pod, through containerd's CRI plugin as kubelet
//! drives it: a container that exits non-zero, one that cannot start (with
//! runc, the reference, and with monocore); and for monocore's pod VM, a
//! pod removed while its containers run, containerd restarting, and the
//! shim killed. Each test ends by checking that nothing is left: no pod,
//! container, task, process, mount, cgroup, network namespace or socket.
//! The monocore tests run under Debian bookworm's containerd 1.6 and again
//! under forky's containerd 2.1.9 (`..._with_containerd_2`, where
//! `scripts/setup.sh` unpacked it), whose task-exit, wait and delete
//! sequence and shim clean-up are its own.
//!
//! The monocore tests boot a VM (~20 s on `kvm_pvm`) and run where
//! `monocore::host::check()` finds a kernel that boots; elsewhere they
//! print `SKIPPED: <test>: <reason>` (or fail, with
//! `MONOCORE_REQUIRE_BOOT=1`, as in CI).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code may panic

mod support;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_cri::v1::{ContainerState, PodSandboxState};
use support::{
    BOOT_TIMEOUT, ContainerdVersion, IMAGE,
    cni::POD_IP,
    cri::{Cri, MONOCORE, RUNC, may_run_cri},
    cri_log::{self, Stream},
    may_boot, processes_of, serial, wait_ended,
};

/// Whether `test` can run with `handler` under containerd `version`
/// (monocore's boot a VM).
fn may(test: &str, handler: &str, version: ContainerdVersion) -> bool {
    may_run_cri(test, handler, version) && (handler != MONOCORE || may_boot(test))
}

const V1_6: ContainerdVersion = ContainerdVersion::V1_6;
const V2_1: ContainerdVersion = ContainerdVersion::V2_1;

/// A pod of one container that runs `command` with `handler`: the pod's
/// id, the container's id, and its log file.
fn one_container_pod(cri: &Cri, handler: &str, command: &[&str]) -> (String, String, PathBuf) {
    let client = cri.client();
    let pod = cri.pod("failing-pod", 1);
    let sandbox = pod.sandbox_config();
    let pod_id = cri
        .run_pod(&pod, handler)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}"));
    pod.write_hosts_file(POD_IP);
    let config = pod
        .container("failing", &cri.image_ref(), IMAGE)
        .command(command)
        .build();
    let id = client.create_container(&pod_id, &config, &sandbox).unwrap();
    (pod_id, id, pod.log_file("failing"))
}

/// Stops and removes pod `pod_id` (kubelet's order: its containers are
/// stopped with it, then removed with it), and checks that nothing is left.
fn remove_pod(mut cri: Cri, pod_id: &str) {
    cri.client().stop_pod_sandbox(pod_id).unwrap();
    cri.client().remove_pod_sandbox(pod_id).unwrap();
    cri.assert_nothing_left();
    cri.containerd_mut().stop();
    cri.containerd().assert_nothing_left();
}

fn exits_non_zero(handler: &str, version: ContainerdVersion) {
    let cri = Cri::start_with(version, &[]);
    let (pod_id, id, log_file) = one_container_pod(
        &cri,
        handler,
        &["/bin/sh", "-c", "echo failing >&2; exit 3"],
    );
    cri.client().start_container(&id).unwrap();
    let status = cri.wait_container(&id, ContainerState::ContainerExited, BOOT_TIMEOUT);
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (3, "Error"),
        "{status:#?}"
    );
    let entries = cri_log::wait_for_line(
        &log_file,
        Stream::Stderr,
        "failing",
        Duration::from_secs(10),
    );
    assert_eq!(cri_log::lines(&entries, Stream::Stderr), ["failing"]);
    assert_eq!(
        cri_log::lines(&entries, Stream::Stdout),
        Vec::<String>::new()
    );
    remove_pod(cri, &pod_id);
}

#[test]
fn a_container_that_exits_non_zero_reports_its_code_and_its_stderr() {
    let test = "a_container_that_exits_non_zero_reports_its_code_and_its_stderr";
    if may(test, RUNC, V1_6) {
        let _serial = serial();
        exits_non_zero(RUNC, V1_6);
    }
}

#[test]
fn a_pod_vm_container_that_exits_non_zero_reports_its_code_and_its_stderr() {
    let test = "a_pod_vm_container_that_exits_non_zero_reports_its_code_and_its_stderr";
    if may(test, MONOCORE, V1_6) {
        let _serial = serial();
        exits_non_zero(MONOCORE, V1_6);
    }
}

#[test]
fn a_pod_vm_container_that_exits_non_zero_reports_its_code_and_its_stderr_with_containerd_2() {
    let test =
        "a_pod_vm_container_that_exits_non_zero_reports_its_code_and_its_stderr_with_containerd_2";
    if may(test, MONOCORE, V2_1) {
        let _serial = serial();
        exits_non_zero(MONOCORE, V2_1);
    }
}

fn fails_to_start(handler: &str, version: ContainerdVersion) {
    let cri = Cri::start_with(version, &[]);
    let (pod_id, id, _) = one_container_pod(&cri, handler, &["/no/such/command"]);
    let refused = cri.client().start_container(&id).unwrap_err();
    let message = refused.message().to_lowercase();
    assert!(
        message.contains("/no/such/command") && message.contains("no such file or directory"),
        "{refused:?}"
    );
    let status = cri
        .client()
        .container_status(&id, false)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        status.state(),
        ContainerState::ContainerExited,
        "{status:#?}"
    );
    assert_eq!(
        (status.exit_code, status.reason.as_str()),
        (128, "StartError"),
        "{status:#?}"
    );
    assert!(status.message.contains("/no/such/command"), "{status:#?}");
    remove_pod(cri, &pod_id);
}

#[test]
fn a_container_whose_command_does_not_exist_fails_to_start() {
    let test = "a_container_whose_command_does_not_exist_fails_to_start";
    if may(test, RUNC, V1_6) {
        let _serial = serial();
        fails_to_start(RUNC, V1_6);
    }
}

#[test]
fn a_pod_vm_container_whose_command_does_not_exist_fails_to_start() {
    let test = "a_pod_vm_container_whose_command_does_not_exist_fails_to_start";
    if may(test, MONOCORE, V1_6) {
        let _serial = serial();
        fails_to_start(MONOCORE, V1_6);
    }
}

#[test]
fn a_pod_vm_container_whose_command_does_not_exist_fails_to_start_with_containerd_2() {
    let test = "a_pod_vm_container_whose_command_does_not_exist_fails_to_start_with_containerd_2";
    if may(test, MONOCORE, V2_1) {
        let _serial = serial();
        fails_to_start(MONOCORE, V2_1);
    }
}

/// A monocore pod whose one container runs until it is stopped (it says
/// `up` first): the pod's id and the container's id.
fn running_pod(cri: &Cri) -> (String, String) {
    let (pod_id, id, log_file) =
        one_container_pod(cri, MONOCORE, &["/bin/sh", "-c", "echo up; exec sleep 600"]);
    cri.client().start_container(&id).unwrap();
    cri_log::wait_for_line(&log_file, Stream::Stdout, "up", BOOT_TIMEOUT);
    (pod_id, id)
}

/// The pod's shim: the one process of containerd's whose command line has
/// the shim and the pod's id.
fn pod_shim(cri: &Cri, pod_id: &str) -> u32 {
    let shims: Vec<u32> = processes_of(cri.dir())
        .into_iter()
        .filter(|(_, cmdline, _)| {
            cmdline.contains("containerd-shim-monocore-v1")
                && cmdline.contains(&format!("-id {pod_id}"))
        })
        .map(|(pid, _, _)| pid)
        .collect();
    match shims[..] {
        [shim] => shim,
        _ => panic!("not one shim for pod {pod_id}: {shims:?}"),
    }
}

/// The pod sandbox's task pid: its VM helper.
fn vm_helper(cri: &Cri, pod_id: &str) -> u32 {
    cri.containerd()
        .tasks_in(support::cri::NAMESPACE)
        .into_iter()
        .find(|(id, _, _)| id == pod_id)
        .map(|(_, pid, _)| pid)
        .unwrap()
}

fn removed_while_running(version: ContainerdVersion) {
    let mut cri = Cri::start_with(version, &[]);
    let (pod_id, _) = running_pod(&cri);
    let helper = vm_helper(&cri, &pod_id);
    // No StopContainer first: removing the pod stops and removes all.
    cri.client().remove_pod_sandbox(&pod_id).unwrap();
    assert!(
        wait_ended(helper, Duration::from_secs(30)),
        "the pod's VM {helper} outlived its pod"
    );
    cri.assert_nothing_left();
    cri.containerd_mut().stop();
    cri.containerd().assert_nothing_left();
}

#[test]
fn a_pod_removed_while_its_container_runs_leaves_nothing_behind() {
    let test = "a_pod_removed_while_its_container_runs_leaves_nothing_behind";
    if may(test, MONOCORE, V1_6) {
        let _serial = serial();
        removed_while_running(V1_6);
    }
}

#[test]
fn a_pod_removed_while_its_container_runs_leaves_nothing_behind_with_containerd_2() {
    let test = "a_pod_removed_while_its_container_runs_leaves_nothing_behind_with_containerd_2";
    if may(test, MONOCORE, V2_1) {
        let _serial = serial();
        removed_while_running(V2_1);
    }
}

fn containerd_restarts(version: ContainerdVersion) {
    let mut cri = Cri::start_with(version, &[]);
    let (pod_id, id) = running_pod(&cri);
    let helper = vm_helper(&cri, &pod_id);
    cri.containerd_mut().restart();
    cri.reconnect();
    // The same VM, the same container, still running and reachable.
    assert!(
        !support::has_ended(helper),
        "the pod's VM ended with containerd"
    );
    let status = cri
        .client()
        .pod_sandbox_status(&pod_id, false)
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.state(), PodSandboxState::SandboxReady);
    let status = cri.wait_container(&id, ContainerState::ContainerRunning, Duration::ZERO);
    assert_eq!(status.exit_code, 0);
    let exec = cri
        .client()
        .exec_sync(&id, &["/bin/echo", "still here"], Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        (exec.exit_code, exec.stdout.as_slice()),
        (0, &b"still here\n"[..])
    );
    remove_pod(cri, &pod_id);
    assert!(support::has_ended(helper));
}

#[test]
fn a_pod_vm_runs_on_while_containerd_restarts_and_containerd_reattaches() {
    let test = "a_pod_vm_runs_on_while_containerd_restarts_and_containerd_reattaches";
    if may(test, MONOCORE, V1_6) {
        let _serial = serial();
        containerd_restarts(V1_6);
    }
}

#[test]
fn a_pod_vm_runs_on_while_containerd_restarts_and_containerd_reattaches_with_containerd_2() {
    let test =
        "a_pod_vm_runs_on_while_containerd_restarts_and_containerd_reattaches_with_containerd_2";
    if may(test, MONOCORE, V2_1) {
        let _serial = serial();
        containerd_restarts(V2_1);
    }
}

fn shim_killed(version: ContainerdVersion) {
    let cri = Cri::start_with(version, &[]);
    let (pod_id, id) = running_pod(&cri);
    let helper = vm_helper(&cri, &pod_id);
    let shim = pod_shim(&cri, &pod_id);
    // SAFETY: plain syscall; the pid is the shim just found in /proc.
    unsafe { libc::kill(i32::try_from(shim).unwrap(), libc::SIGKILL) };
    assert!(
        wait_ended(helper, Duration::from_secs(20)),
        "the VM helper {helper} outlived its shim"
    );
    // containerd notices the dead shim: the container has exited.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cri
            .client()
            .container_status(&id, false)
            .unwrap()
            .status
            .unwrap();
        if status.state() == ContainerState::ContainerExited {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{status:#?}\n{}",
            cri.containerd().log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    remove_pod(cri, &pod_id);
}

#[test]
fn a_killed_pod_shim_takes_its_vm_down_and_containerd_cleans_up() {
    let test = "a_killed_pod_shim_takes_its_vm_down_and_containerd_cleans_up";
    if may(test, MONOCORE, V1_6) {
        let _serial = serial();
        shim_killed(V1_6);
    }
}

#[test]
fn a_killed_pod_shim_takes_its_vm_down_and_containerd_cleans_up_with_containerd_2() {
    let test = "a_killed_pod_shim_takes_its_vm_down_and_containerd_cleans_up_with_containerd_2";
    if may(test, MONOCORE, V2_1) {
        let _serial = serial();
        shim_killed(V2_1);
    }
}
