//! `containerd-shim-monocore-v1`: a containerd shim v2 that runs each
//! container in a monocore microVM. containerd starts it for the runtime
//! `io.containerd.monocore.v1`; see the README's "Kubernetes and containerd"
//! section.
//!
//! This binary is also its own VM helper: monocore re-executes it for each
//! VM and recognises that before `main` runs.

use std::process::ExitCode;

mod actions;
mod container;
mod error;
mod events;
mod exit;
mod pod;
mod rootfs;
mod runs;
mod service;
mod spec;
mod stats;
mod stdio;
mod task;

/// The runtime name containerd knows this shim by.
const RUNTIME_ID: &str = "io.containerd.monocore.v1";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let result = containerd_shim::parse(&args).and_then(|flags| {
        if flags.version {
            println!("{RUNTIME_ID} {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        if flags.namespace.is_empty() {
            return Err(containerd_shim::Error::InvalidArgument(
                "-namespace is required".to_owned(),
            ));
        }
        match flags.action.as_str() {
            "start" => actions::start(&flags),
            "delete" => actions::delete(&flags),
            "" if !flags.socket.is_empty() => actions::serve(&flags),
            other => Err(containerd_shim::Error::InvalidArgument(format!(
                "unknown action `{other}` (start, delete, or none with -socket)"
            ))),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{RUNTIME_ID}: {e}");
            ExitCode::FAILURE
        }
    }
}
