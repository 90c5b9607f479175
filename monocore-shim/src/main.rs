//! `containerd-shim-monocore-v1`: a containerd shim v2 that runs each
//! container in a monocore microVM. containerd starts it for the runtime
//! `io.containerd.monocore.v1`; see the README's "Kubernetes and containerd"
//! section.
//!
//! This binary is also its own VM helper: monocore re-executes it for each
//! VM and recognises that before `main` runs.

mod container;
mod error;
mod events;
mod rootfs;
mod service;
mod spec;
mod stdio;

/// The runtime name containerd knows this shim by.
const RUNTIME_ID: &str = "io.containerd.monocore.v1";

fn main() {
    let config = containerd_shim::Config {
        // The VM handles reap their own helpers: a reaper thread that waits
        // for any child would take their exit statuses away.
        no_reaper: true,
        // Nothing of ours is reparented to the shim: the helper starts no
        // processes of its own.
        no_sub_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<service::Shim>(RUNTIME_ID, Some(config));
}
