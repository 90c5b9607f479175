//! The protocol between monocore (the host) and its guest agent.
//!
//! The agent is a small static program that monocore places in each VM's
//! private root filesystem and that libkrun's init runs as the VM's
//! command. It mounts the guest's real root filesystem and the mapped
//! directories, switches into that root, sets resource limits, the working
//! directory and the environment, and then executes the user's command, so
//! that nothing of the command travels on the kernel command line. The
//! agent itself is this package's binary (`src/main.rs` and `src/guest/`):
//! none of its guest-only code is part of this library, which every host
//! build of monocore compiles.
//!
//! This library holds only what both sides share:
//! - [`spec`]: host to agent, what to set up and run (a file in the VM's
//!   private root);
//! - [`report`]: agent to host, whether set-up succeeded (a file too);
//! - [`control`]: the control channel of a running VM (vsock);
//! - [`wire`]: the encoding the spec and the control channel share;
//! - [`paths`]: where the agent's files are, as the guest sees them.
//!
//! Every decoder is bounded and treats its input as hostile.

pub mod control;
pub mod paths;
pub mod report;
pub mod spec;
pub mod wire;
