//! `monocore run --net --allow`, with the real binary and real boots: a
//! guest fetches from a server on the host's 127.0.0.1 that its allow-list
//! names, and an unlisted port fails. They run where a VM can boot and
//! passt is installed; elsewhere each prints `SKIPPED` (or fails, with
//! `MONOCORE_REQUIRE_BOOT=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

mod common;

use common::monocore;
use monocore_suite::{cannot_run, may_boot, run::HttpServer};

fn may_network(test: &str) -> bool {
    may_boot(test)
        && match monocore::net::find_passt() {
            Ok(_) => true,
            Err(e) => cannot_run(test, &format!("no passt here: {e}")),
        }
}

fn run(args: &[String]) -> Output {
    monocore().args(args).output().unwrap()
}

#[test]
fn run_net_allow_fetches_from_the_listed_host_port_only() {
    let test = "run_net_allow_fetches_from_the_listed_host_port_only";
    if !may_network(test) {
        return;
    }
    let allowed = HttpServer::start("hello from the host").port;
    let unlisted = HttpServer::start("must not be seen").port;
    let args = |port: u16| -> Vec<String> {
        [
            "run".to_owned(),
            "--net".to_owned(),
            "--allow".to_owned(),
            format!("127.0.0.1:{allowed}"),
            "--".to_owned(),
            "wget".to_owned(),
            "-qO-".to_owned(),
            format!("http://host.monocore.internal:{port}/"),
        ]
        .to_vec()
    };
    let out = run(&args(allowed));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout, "hello from the host");

    let out = run(&args(unlisted));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("must not be seen"), "{stdout}");
}
