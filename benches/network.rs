//! The guest network (`net`), side by side with the host's own loopback, in
//! one run. Every transfer is between a guest and a server on the host's
//! 127.0.0.1, through passt and monocore's relay (see `monocore::net`).
//!
//! - `tcp_1mib`: 1 MiB over one TCP connection into a host server, timed
//!   by the server from the connection's accept to its end: from the guest
//!   (`dd | nc` in a running VM, through `VmHandle::exec`), next to the same
//!   bytes from a host thread over the host's loopback; 1 MiB that the
//!   guest's busybox `httpd` sends (one `sendfile`: busybox `nc` above
//!   copies 1 KiB per system call) to a host client through a published
//!   port, timed by the client from connect to the end; and the guest's own
//!   cost of the same bytes through a pipe, with no network (busybox
//!   `time`, 10 ms resolution);
//! - `http_round_trip`: one HTTP/1.0 request and its answer on a new
//!   connection (connect, request, response, close), timed by the server
//!   between the accepts of 20 connections made in a row by one process:
//!   busybox `wget` with 20 URLs in the guest, a Rust client on the host;
//! - `boot_true_and_exit`: spawn → `/bin/true` → exit, without and with
//!   `net` (passt started, the namespace made, `eth0` configured): the
//!   boot-time cost of `net`.
//!
//! It runs where real boots run and passt is installed; elsewhere it
//! prints why it skipped. Run: `cargo bench --bench network`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use monocore::{
    config::PortPair,
    vm::{GuestCommand, GuestOutput, MicroVm, MicroVmConfig, SpawnOptions, VmHandle},
};

const SIZE: u64 = 1 << 20;
const REQUESTS: u32 = 20;

/// A sink on the host's 127.0.0.1: for each connection, the time from its
/// accept to its end and the bytes read.
fn sink() -> (u16, mpsc::Receiver<(Duration, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let start = Instant::now();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n as u64,
                }
            }
            let _ = tx.send((start.elapsed(), total));
        }
    });
    (port, rx)
}

/// An HTTP server on the host's 127.0.0.1 that answers `ok` and reports
/// each accept's instant.
fn http_server() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let _ = tx.send(Instant::now());
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, rx)
}

fn run_in(vm: &mut VmHandle, script: &str) {
    let mut process = vm
        .exec(GuestCommand::new("/bin/sh").args(["-c", script]))
        .unwrap();
    let status = process.wait().unwrap();
    assert!(status.success(), "{script}: {status}");
}

/// The `real` time busybox's `time` reports for `command` in the guest
/// (10 ms resolution).
fn guest_time(vm: &mut VmHandle, command: &str) -> Duration {
    let script = format!("{{ time sh -c '{command}'; }} 2>&1 >/dev/null");
    let mut process = vm
        .exec(
            GuestCommand::new("/bin/sh")
                .args(["-c", &script])
                .stdout(GuestOutput::Piped),
        )
        .unwrap();
    let mut out = String::new();
    process
        .take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(process.wait().unwrap().success(), "{out}");
    // `real\t0m 1.17s`
    let real = out.lines().find_map(|l| l.strip_prefix("real")).unwrap();
    let (minutes, seconds) = real.trim().split_once('m').unwrap();
    let seconds: f64 = seconds.trim().trim_end_matches('s').parse().unwrap();
    Duration::from_secs_f64(minutes.parse::<f64>().unwrap() * 60.0 + seconds)
}

/// The time per connection from `n` accepts in a row.
fn per_connection(rx: &mpsc::Receiver<Instant>, n: u32) -> Duration {
    let accepts: Vec<Instant> = (0..n)
        .map(|_| rx.recv_timeout(Duration::from_secs(120)).unwrap())
        .collect();
    (accepts[accepts.len() - 1] - accepts[0]) / (n - 1)
}

fn bench(c: &mut Criterion) {
    if !monocore_suite::may_boot("network") {
        return;
    }
    if let Err(e) = monocore::net::find_passt() {
        monocore_suite::skip("network", &format!("no passt here: {e}"));
        return;
    }
    let root = monocore_suite::busybox_rootfs().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let options = SpawnOptions::new()
        .capture_console(true)
        .runs_dir(runs.path());
    let (sink_port, sunk) = sink();
    let (http_port, accepts) = http_server();
    let published = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = MicroVmConfig::new(root.path(), 256);
    config.net = true;
    config.port_map = vec![PortPair::with_distinct(published, 8080)];
    config.allow = vec![
        format!("127.0.0.1:{sink_port}").parse().unwrap(),
        format!("127.0.0.1:{http_port}").parse().unwrap(),
    ];
    let mut vm = MicroVm::from_config(config.clone())
        .unwrap()
        .spawn_with(&options.clone().idle(true))
        .unwrap();
    run_in(
        &mut vm,
        &format!(
            "mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/1mib bs=65536 count={} 2>/dev/null \
             && httpd -p 8080 -h /tmp/www",
            SIZE / 65536
        ),
    );

    let mut group = c.benchmark_group("network");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE));
    group.bench_function("tcp_1mib/host_to_host_loopback", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let mut stream = TcpStream::connect(("127.0.0.1", sink_port)).unwrap();
                    let chunk = vec![0u8; 1 << 16];
                    for _ in 0..SIZE / (1 << 16) {
                        stream.write_all(&chunk).unwrap();
                    }
                    drop(stream);
                    let (time, bytes) = sunk.recv().unwrap();
                    assert_eq!(bytes, SIZE);
                    time
                })
                .sum()
        })
    });
    let script = format!(
        "dd if=/dev/zero bs=65536 count={} 2>/dev/null | nc 10.0.2.2 {sink_port}",
        SIZE / 65536
    );
    group.bench_function("tcp_1mib/guest_to_host_loopback", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run_in(&mut vm, &script);
                    let (time, bytes) = sunk.recv().unwrap();
                    assert_eq!(bytes, SIZE);
                    time
                })
                .sum()
        })
    });
    group.bench_function(
        "tcp_1mib/guest_httpd_sendfile_to_host_through_publish",
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let start = Instant::now();
                        let mut stream = TcpStream::connect(("127.0.0.1", published)).unwrap();
                        stream.write_all(b"GET /1mib HTTP/1.0\r\n\r\n").unwrap();
                        let mut body = Vec::with_capacity(SIZE as usize + 512);
                        stream.read_to_end(&mut body).unwrap();
                        assert!(body.len() as u64 > SIZE, "{} bytes", body.len());
                        start.elapsed()
                    })
                    .sum()
            })
        },
    );
    // What moving the same bytes costs the guest without any network: its
    // kernel's code is what is slow on a kvm_pvm host.
    let pipe = format!(
        "dd if=/dev/zero bs=65536 count={} 2>/dev/null | cat >/dev/null",
        SIZE / 65536
    );
    group.bench_function("tcp_1mib/guest_pipe_no_network", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| guest_time(&mut vm, &pipe)).sum())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("http_round_trip/host_to_host_loopback", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    for _ in 0..REQUESTS {
                        let mut s = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
                        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                        let mut answer = String::new();
                        s.read_to_string(&mut answer).unwrap();
                        assert!(answer.ends_with("ok"));
                    }
                    per_connection(&accepts, REQUESTS)
                })
                .sum()
        })
    });
    let urls: Vec<String> = (0..REQUESTS)
        .map(|_| format!("http://10.0.2.2:{http_port}/"))
        .collect();
    let wget = format!("wget -q -O /dev/null {}", urls.join(" "));
    group.bench_function("http_round_trip/guest_to_host_loopback", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run_in(&mut vm, &wget);
                    per_connection(&accepts, REQUESTS)
                })
                .sum()
        })
    });
    drop(vm);

    group.throughput(Throughput::Elements(1));
    for net in [false, true] {
        let mut config = config.clone();
        config.exec_path = Some("/bin/true".into());
        config.net = net;
        config.port_map.clear();
        if !net {
            config.allow.clear();
        }
        let vm = MicroVm::from_config(config).unwrap();
        let name = if net {
            "boot_true_and_exit/net"
        } else {
            "boot_true_and_exit/no_net"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let start = Instant::now();
                        let status = vm.spawn_with(&options).and_then(|mut h| h.wait()).unwrap();
                        assert!(status.success(), "{status}");
                        start.elapsed()
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
