//! `containerd-shim-monocore-v1`: containerd's shim v2 for monocore.

mod spec;

fn main() {}
