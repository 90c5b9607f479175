//! The shim under a real containerd (Debian's 1.6, a private instance per
//! test: see `support`), driven with `ctr` as a user would. Tests that boot
//! a VM run where `monocore::host::check()` finds a kernel that boots (on
//! this project's `kvm_pvm` host and in CI: the compat kernel, ~20 s a
//! boot) and print `SKIPPED: <test>: <reason>` elsewhere; all of them skip
//! loudly without containerd or root (or fail, with
//! `MONOCORE_REQUIRE_BOOT=1`, as in CI).
//!
//! Each test ends by checking that nothing is left: no task, no container,
//! no process of the private containerd's (shim or VM helper), no mount.
//! They run one at a time: each boots VMs on a small machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

mod support;

use std::time::{Duration, Instant};

use support::{
    BOOT_TIMEOUT, Containerd, ContainerdVersion, IMAGE, RUNTIME, has_ended, may_boot, may_run,
    may_run_version, serial, wait_ended,
};

/// 256 MiB: `--memory-limit` becomes the VM's RAM.
const MEMORY: &str = "268435456";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// After the tasks `ids` were deleted: nothing listed, nothing running,
/// nothing mounted, no run directory, no shim socket.
fn assert_clean(containerd: &Containerd, ids: &[&str]) {
    for id in ids {
        containerd.assert_socket_gone(id);
    }
    assert_eq!(containerd.tasks(), [], "tasks left");
    assert_eq!(
        containerd.containers(),
        Vec::<String>::new(),
        "containers left"
    );
    containerd.assert_nothing_left();
}

#[test]
fn ctr_run_prints_the_guest_output_and_exits_with_its_code() {
    let test = "ctr_run_prints_the_guest_output_and_exits_with_its_code";
    if !may_run(test) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    let out = containerd.ctr(&[
        "run",
        "--rm",
        "--memory-limit",
        MEMORY,
        "--runtime",
        RUNTIME,
        IMAGE,
        "out-and-code",
        "/bin/sh",
        "-c",
        "echo hello from the guest; echo to stderr >&2; exit 7",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout: {stdout}\nstderr: {}\n{}",
        text(&out.stderr),
        containerd.log_tail()
    );
    // The console merges the command's stdout and stderr into stdout.
    assert!(stdout.contains("hello from the guest\n"), "{stdout}");
    assert!(stdout.contains("to stderr\n"), "{stdout}");
    assert_clean(&containerd, &["out-and-code"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn ctr_run_with_monocore_annotations_gets_the_allowed_network_only() {
    let test = "ctr_run_with_monocore_annotations_gets_the_allowed_network_only";
    if !may_run(test) || !may_boot(test) {
        return;
    }
    if let Err(e) = monocore::net::find_passt() {
        support::cannot_run(test, &format!("no passt here: {e}"));
        return;
    }
    let _serial = serial();
    let allowed = monocore_suite::run::HttpServer::start("through the allow-list").port;
    let unlisted = monocore_suite::run::HttpServer::start("must not be seen").port;
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    let allow = format!("io.monocore.allow=127.0.0.1:{allowed}");
    let script = format!(
        "wget -qO- http://host.monocore.internal:{allowed}/; echo; \
         wget -qO- http://host.monocore.internal:{unlisted}/; echo \"unlisted rc=$?\""
    );
    let out = containerd.ctr(&[
        "run",
        "--rm",
        "--memory-limit",
        MEMORY,
        "--runtime",
        RUNTIME,
        "--annotation",
        "io.monocore.net=true",
        "--annotation",
        &allow,
        IMAGE,
        "net-allow",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}\n{}",
        text(&out.stderr),
        containerd.log_tail()
    );
    assert!(stdout.contains("through the allow-list\n"), "{stdout}");
    assert!(stdout.contains("unlisted rc=1\n"), "{stdout}");
    assert!(!stdout.contains("must not be seen"), "{stdout}");
    assert_clean(&containerd, &["net-allow"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn a_spec_the_vm_cannot_honour_is_refused_at_create() {
    let test = "a_spec_the_vm_cannot_honour_is_refused_at_create";
    if !may_run(test) {
        return;
    }
    let _serial = serial();
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    // A bind mount of a file: virtio-fs shares directories only.
    let file = containerd.dir().join("config.toml");
    let mount = format!(
        "type=bind,src={},dst=/etc/config.toml,options=rbind:rw",
        file.display()
    );
    let out = containerd.ctr(&[
        "run",
        "--rm",
        "--mount",
        &mount,
        "--runtime",
        RUNTIME,
        IMAGE,
        "refused",
        "/bin/true",
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "the bundle's OCI spec cannot run as a microVM: mounts[7].source: {} is not a directory: only directories can be shared with a microVM (virtio-fs)",
            file.display()
        )),
        "{stderr}"
    );
    // A privileged container: the host's devices.
    let out = containerd.ctr(&[
        "run",
        "--rm",
        "--privileged",
        "--runtime",
        RUNTIME,
        IMAGE,
        "privileged",
        "/bin/true",
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("linux.devices[0]: device /dev/")
            && stderr.contains("cannot be passed to a microVM: the guest has no host devices"),
        "{stderr}"
    );
    // `ctr run --rm` removes the container only after a task ran: the
    // refused ones are removed by hand, as a user would.
    for id in containerd.containers() {
        containerd.ctr_ok(&["container", "rm", &id]);
    }
    assert_clean(&containerd, &["refused", "privileged"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn a_boot_failure_ends_the_task_with_status_125_and_says_why() {
    let test = "a_boot_failure_ends_the_task_with_status_125_and_says_why";
    if !may_run(test) || !monocore_suite::kvm_usable(test) {
        return;
    }
    let _serial = serial();
    // A kernel that is not one: the VMM refuses it at once, on any host.
    let kernel = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kernel.path(), b"\x7fELF, but not a kernel").unwrap();
    let mut containerd =
        Containerd::start(&[("MONOCORE_SHIM_KERNEL", kernel.path().to_str().unwrap())]);
    containerd.import_image();
    let started = Instant::now();
    let out = containerd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "no-boot",
        "/bin/true",
    ]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "stdout: {}\nstderr: {}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        containerd.log_tail()
    );
    // The error reaches the task's stderr, from the VMM itself.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("monocore: "), "{stderr}");
    assert!(stderr.contains("krun_start_enter"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_clean(&containerd, &["no-boot"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn ctr_task_kill_ends_a_running_vm_and_delete_leaves_nothing() {
    let test = "ctr_task_kill_ends_a_running_vm_and_delete_leaves_nothing";
    if !may_run(test) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    // `ctr run` in the foreground, as a user would, its output in a file.
    let log = containerd.dir().join("task.log");
    let mut run = containerd.ctr_spawn(
        &[
            "run",
            "--rm",
            "--memory-limit",
            MEMORY,
            "--runtime",
            RUNTIME,
            IMAGE,
            "to-kill",
            "/bin/sh",
            "-c",
            "echo booted; exec sleep 600",
        ],
        std::fs::File::create(&log).unwrap(),
    );
    let pid = containerd.wait_for_status("to-kill", "RUNNING", Duration::from_secs(30));
    // Once the guest runs its command…
    wait_for_text(&log, "booted\n", &containerd);
    // …a signal it cannot take is refused, and the task runs on.
    let out = containerd.ctr(&["task", "kill", "--signal", "SIGUSR1", "to-kill"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("signal 10 cannot be delivered"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        containerd.wait_for_status("to-kill", "RUNNING", Duration::ZERO),
        pid
    );
    // `pids` lists the VM helper; `exec` is refused (one command per VM).
    let ps = containerd.ctr_ok(&["task", "ps", "to-kill"]);
    assert!(ps.contains(&pid.to_string()), "{ps}");
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "second",
        "to-kill",
        "/bin/true",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "exec is supported in a pod's containers only (a container with a microVM of its own runs one command)"
        ),
        "{}",
        text(&out.stderr)
    );
    // SIGTERM (ctr's default) ends the VM: `ctr run` exits with 137, and
    // deletes the task and the container.
    containerd.ctr_ok(&["task", "kill", "to-kill"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ctr run did not end: {}",
            containerd.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(137), "{}", containerd.log_tail());
    assert!(
        wait_ended(pid, Duration::from_secs(10)),
        "the VM helper {pid} still runs"
    );
    assert_clean(&containerd, &["to-kill"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn killing_containerd_mid_run_leaves_the_vm_to_its_shim_which_reattaches() {
    let test = "killing_containerd_mid_run_leaves_the_vm_to_its_shim_which_reattaches";
    if !may_run(test) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    let log = containerd.dir().join("task.log");
    let log_uri = format!("file://{}", log.display());
    containerd.ctr_ok(&[
        "run",
        "-d",
        "--log-uri",
        &log_uri,
        "--memory-limit",
        MEMORY,
        "--runtime",
        RUNTIME,
        IMAGE,
        "survivor",
        "/bin/sh",
        "-c",
        "echo booted; exec sleep 600",
    ]);
    let pid = containerd.wait_for_status("survivor", "RUNNING", Duration::from_secs(30));
    // containerd dies mid-boot; the shim and the VM do not.
    containerd.kill();
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_ended(pid), "the VM died with containerd");
    wait_for_text(&log, "booted\n", &containerd);
    // A new containerd on the same state finds the task through its shim.
    containerd.restart();
    assert_eq!(
        containerd.wait_for_status("survivor", "RUNNING", Duration::from_secs(30)),
        pid
    );
    containerd.ctr_ok(&["task", "kill", "--signal", "SIGKILL", "survivor"]);
    containerd.wait_for_status("survivor", "STOPPED", Duration::from_secs(30));
    assert!(
        wait_ended(pid, Duration::from_secs(10)),
        "the VM helper {pid} still runs"
    );
    containerd.ctr_ok(&["task", "delete", "survivor"]);
    containerd.ctr_ok(&["container", "rm", "survivor"]);
    assert_clean(&containerd, &["survivor"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

#[test]
fn killing_the_shim_kills_the_vm_and_containerd_cleans_up() {
    let test = "killing_the_shim_kills_the_vm_and_containerd_cleans_up";
    if !may_run(test) || !may_boot(test) {
        return;
    }
    let _serial = serial();
    let mut containerd = Containerd::start(&[]);
    containerd.import_image();
    let log = containerd.dir().join("task.log");
    let log_uri = format!("file://{}", log.display());
    containerd.ctr_ok(&[
        "run",
        "-d",
        "--log-uri",
        &log_uri,
        "--memory-limit",
        MEMORY,
        "--runtime",
        RUNTIME,
        IMAGE,
        "orphan",
        "/bin/sh",
        "-c",
        "echo booted; exec sleep 600",
    ]);
    let pid = containerd.wait_for_status("orphan", "RUNNING", Duration::from_secs(30));
    // The guest runs its command; then its shim is killed.
    wait_for_text(&log, "booted\n", &containerd);
    let shims: Vec<u32> = support::processes_of(containerd.dir())
        .into_iter()
        .filter(|(_, cmdline, _)| {
            cmdline.contains("containerd-shim-monocore-v1") && cmdline.contains("-id orphan")
        })
        .map(|(pid, _, _)| pid)
        .collect();
    assert_eq!(shims.len(), 1, "{shims:?}");
    // SAFETY: plain syscall; the pid is the shim just found in /proc.
    unsafe { libc::kill(i32::try_from(shims[0]).unwrap(), libc::SIGKILL) };
    assert!(
        wait_ended(pid, Duration::from_secs(20)),
        "the VM helper {pid} outlived its shim"
    );
    // containerd notices the dead shim and runs the shim's `delete` action
    // (which unmounts the snapshot, removes the VM's run directory and the
    // socket): wait for that, then for the task to be no longer running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !containerd.socket_gone("orphan")
        || containerd
            .tasks()
            .iter()
            .any(|(id, _, s)| id == "orphan" && s == "RUNNING")
    {
        assert!(Instant::now() < deadline, "{}", containerd.log_tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = containerd.ctr(&["task", "delete", "orphan"]);
    containerd.ctr_ok(&["container", "rm", "orphan"]);
    assert_clean(&containerd, &["orphan"]);
    containerd.stop();
    containerd.assert_nothing_left();
}

/// Waits for `text` in `file` (a task's `--log-uri` file) for as long as a
/// boot may take.
fn wait_for_text(file: &std::path::Path, text: &str, containerd: &Containerd) {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(file).unwrap_or_default();
        if log.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {} within {BOOT_TIMEOUT:?}: {log}\n{}",
            file.display(),
            containerd.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The README's containerd config snippet whose runtime table is
/// `header`, read by containerd `version` (`config dump`, which parses it
/// with its CRI plugin's config types): the runtime is registered.
fn readme_snippet_registers_the_runtime(version: ContainerdVersion, header: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let snippet = readme
        .split("```toml\n")
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains(header))
        .expect("the README has the containerd snippet");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let d = dir.path().display();
    std::fs::write(
        &config,
        // Top-level keys first: after the snippet they would be the
        // runtime table's.
        format!("root = \"{d}/root\"\nstate = \"{d}/state\"\n{snippet}"),
    )
    .unwrap();
    let out = std::process::Command::new(version.tool("containerd"))
        .arg("--config")
        .arg(&config)
        .args(["config", "dump"])
        .output()
        .unwrap();
    let dump = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let section = dump
        .split(header)
        .nth(1)
        .unwrap_or_else(|| panic!("no runtimes.monocore in:\n{dump}"));
    let section = section.split("\n\n").next().unwrap_or_default();
    // 1.6 quotes strings with `"`, 2.1 with `'`.
    let runtime_type = section
        .lines()
        .find_map(|line| line.trim().strip_prefix("runtime_type = "))
        .map(|value| value.trim_matches(['"', '\'']));
    assert_eq!(runtime_type, Some(RUNTIME), "{section}");
}

#[test]
fn the_readme_snippet_registers_the_runtime_with_containerds_cri_plugin() {
    let test = "the_readme_snippet_registers_the_runtime_with_containerds_cri_plugin";
    if may_run(test) {
        readme_snippet_registers_the_runtime(
            ContainerdVersion::V1_6,
            r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.monocore]"#,
        );
    }
}

#[test]
fn the_readme_snippet_registers_the_runtime_with_containerd_2s_cri_plugin() {
    let test = "the_readme_snippet_registers_the_runtime_with_containerd_2s_cri_plugin";
    if may_run_version(test, ContainerdVersion::V2_1) {
        readme_snippet_registers_the_runtime(
            ContainerdVersion::V2_1,
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.monocore]",
        );
    }
}
