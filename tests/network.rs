//! Networking (`net`): real boots of guests behind passt, with servers and
//! clients on the host's 127.0.0.1 only. No packet of these tests is
//! addressed outside this machine: the guest's subnet (10.0.2.0/24) exists
//! only between the guest and its passt process, and every allow-list
//! entry here is the host's loopback or a name the host resolves to it.
//!
//! They run where real-boot tests run (see `tests/boot.rs`) and need
//! passt (`scripts/install-passt.sh`); elsewhere each prints
//! `SKIPPED: <test>: <reason>` (or fails, with `MONOCORE_REQUIRE_BOOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    config::PortPair,
    vm::{MicroVm, MicroVmConfig},
};
use monocore_suite::{
    assert_nothing_left, busybox_rootfs, cannot_run, has_ended, may_boot,
    run::{BOOT_TIMEOUT, Finished, HttpServer, options, run_to_end},
    sh_config, wait_ended,
};

/// Whether `test` may run: a host that boots, and passt.
fn may_network(test: &str) -> bool {
    if !may_boot(test) {
        return false;
    }
    match monocore::net::find_passt() {
        Ok(_) => true,
        Err(e) => cannot_run(test, &format!("no passt here: {e}")),
    }
}

fn boot(test: &str, config: MicroVmConfig) -> Option<Finished> {
    may_network(test).then(|| run_to_end(test, config))
}

fn net_config(root: &Path, script: &str, allow: &[String]) -> MicroVmConfig {
    let mut config = sh_config(root, script);
    config.net = true;
    config.allow = allow.iter().map(|a| a.parse().unwrap()).collect();
    config
}

/// Runs `$@` with a 30 s bound and prints `<label> rc=<status>`: a denied
/// connection must fail on its own (rc 1), not be cut by the bound (143).
const BOUNDED: &str =
    "t() { l=$1; shift; timeout 30 \"$@\" >/dev/null 2>&1; echo \"$l rc=$?\"; }; ";

#[test]
fn an_allowed_host_port_answers_and_everything_else_fails_at_once() {
    let test = "an_allowed_host_port_answers_and_everything_else_fails_at_once";
    let allowed = HttpServer::start("allowed-body");
    let unlisted = HttpServer::start("unlisted-body");
    let root = busybox_rootfs().unwrap();
    let (a, u) = (allowed.port, unlisted.port);
    let script = format!(
        "{BOUNDED}ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; \
         wget -qO- http://host.monocore.internal:{a}/; echo ' rc='$?; \
         t unlisted-port wget -qO- http://host.monocore.internal:{u}/; \
         t unlisted-port-nc nc 10.0.2.2 {u}; \
         t guest-loopback wget -qO- http://127.0.0.1:{a}/; \
         t raw-icmp ping -c 1 -W 5 10.0.2.2; \
         t ipv6 wget -qO- http://[::1]:{a}/; \
         test -e /proc/net/if_inet6 && echo ipv6-stack || echo no-ipv6-stack"
    );
    let config = net_config(root.path(), &script, &[format!("127.0.0.1:{a}")]);
    let Some(vm) = boot(test, config) else { return };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    for line in [
        "inet 10.0.2.15/24",
        "allowed-body rc=0",
        "unlisted-port rc=1",
        "unlisted-port-nc rc=1",
        "guest-loopback rc=1",
        "raw-icmp rc=1",
        "ipv6 rc=1",
        "no-ipv6-stack",
    ] {
        assert!(vm.has_line(line), "no line {line:?} in:\n{}", vm.console);
    }
    assert_eq!(allowed.accepted(), 1, "{}", vm.console);
    assert_eq!(unlisted.accepted(), 0, "{}", vm.console);
}

#[test]
fn dns_answers_allowed_names_and_the_host_alias_only() {
    let test = "dns_answers_allowed_names_and_the_host_alias_only";
    let server = HttpServer::start("by-name");
    let root = busybox_rootfs().unwrap();
    let script = format!(
        "{BOUNDED}cat /etc/resolv.conf; \
         nslookup localhost | grep -x 'Address: 10.0.2.2' && echo localhost-resolves; \
         nslookup host.monocore.internal | grep -x 'Address: 10.0.2.2' && echo alias-resolves; \
         t denied-name nslookup denied.example; \
         t denied-name-wget wget -qO- http://denied.example:{p}/",
        p = server.port
    );
    // `localhost` is in the host's /etc/hosts: an allowed name that the
    // host resolves without sending a query anywhere.
    let config = net_config(
        root.path(),
        &script,
        &[format!("localhost:{}", server.port)],
    );
    let Some(vm) = boot(test, config) else { return };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    for line in [
        "nameserver 10.0.2.2",
        "localhost-resolves",
        "alias-resolves",
        "denied-name rc=1",
        "denied-name-wget rc=1",
    ] {
        assert!(vm.has_line(line), "no line {line:?} in:\n{}", vm.console);
    }
    assert_eq!(server.accepted(), 0);
}

#[test]
fn without_net_the_guest_has_no_interface_but_lo() {
    let test = "without_net_the_guest_has_no_interface_but_lo";
    let root = busybox_rootfs().unwrap();
    let config = sh_config(root.path(), "ls /sys/class/net");
    assert!(!config.net);
    let Some(vm) = boot(test, config) else { return };
    assert_eq!(vm.code(), Some(0), "{}", vm.console);
    assert_eq!(vm.console, "lo\n");
}

/// A free port on the host's 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pids of `pid`'s child processes.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Every process whose network namespace is `ns` (a `net:[inode]` link).
fn processes_in_netns(ns: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|link| link == ns)
        })
        .collect()
}

/// Whether some socket in this (the host's) namespace listens on
/// 127.0.0.1:`port` (from /proc/net/tcp: state 0A, LISTEN).
fn listening_on_loopback(port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!("0100007F:{port:04X}");
    Some(table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&want.as_str()) && fields.get(3) == Some(&"0A")
    }))
}

/// GETs `/` from 127.0.0.1:`port` until an answer holds `body` or
/// `deadline` passes; returns the last answer.
fn fetch_until(port: u16, body: &str, deadline: Instant) -> String {
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
            last.clear();
            let _ = stream.read_to_string(&mut last);
            if last.contains(body) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

#[test]
fn a_published_guest_port_answers_on_host_loopback_and_nothing_is_left_after_kill_9() {
    let test = "a_published_guest_port_answers_on_host_loopback_and_nothing_is_left_after_kill_9";
    if !may_network(test) {
        return;
    }
    let root = busybox_rootfs().unwrap();
    let host_port = free_port();
    let script = "mkdir -p /tmp/www && echo published-body > /tmp/www/index.html \
                  && httpd -p 8080 -h /tmp/www && sleep 600";
    let mut config = net_config(root.path(), script, &[]);
    config.port_map = vec![PortPair::with_distinct(host_port, 8080)];
    let runs = tempfile::tempdir().unwrap();
    let mut handle = MicroVm::from_config(config)
        .unwrap()
        .spawn_with(&options(runs.path()))
        .unwrap();
    let pid = handle.pid();

    let answer = fetch_until(host_port, "published-body", Instant::now() + BOOT_TIMEOUT);
    assert!(
        answer.contains("published-body"),
        "no answer from the guest's httpd on 127.0.0.1:{host_port}: {answer:?}\nconsole:\n{}",
        String::from_utf8_lossy(&handle.console_output())
    );
    assert_eq!(listening_on_loopback(host_port), Some(true));

    // passt is the helper's child, in a namespace of its own.
    let passt = children(pid);
    assert_eq!(passt.len(), 1, "the helper's children: {passt:?}");
    let passt = passt[0];
    let netns = std::fs::read_link(format!("/proc/{passt}/ns/net")).unwrap();
    assert_ne!(netns, std::fs::read_link("/proc/self/ns/net").unwrap());

    // kill -9 of the VM's process: passt ends with it (its socket closes),
    // and the namespace with the last of its processes and sockets.
    let pid_t = i32::try_from(pid).unwrap();
    // SAFETY: kill(2) with a pid and a signal number; no memory is passed.
    let killed = unsafe { libc::kill(pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0);
    let _ = handle.wait_timeout(Duration::from_secs(30));
    drop(handle);
    assert!(
        wait_ended(passt, Duration::from_secs(10)),
        "passt {passt} outlived its VM"
    );
    assert!(has_ended(passt));
    assert_eq!(processes_in_netns(&netns), Vec::<u32>::new());
    assert_eq!(listening_on_loopback(host_port), Some(false));
    assert_nothing_left(pid, runs.path());
}
