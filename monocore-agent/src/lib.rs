//! monocore's guest agent and the protocol between it and the host.
//!
//! The agent is a small static program that monocore places in each VM's
//! private root filesystem and that libkrun's init runs as the VM's
//! command. It mounts the guest's real root filesystem and the mapped
//! directories, switches into that root, sets resource limits, the working
//! directory and the environment, and then executes the user's command, so
//! that nothing of the command travels on the kernel command line.
//!
//! This library is the protocol only, what the host and the agent share:
//! - [`spec`]: host to agent, what to set up and run (a file in the VM's
//!   private root);
//! - [`report`]: agent to host, whether set-up succeeded (a file there too);
//! - [`control`]: the control channel (vsock) of a running VM: `exec`,
//!   its streams, `shutdown`;
//! - [`wire`]: the bounded encoding all three use;
//! - [`paths`]: where the agent's files are in the private root.
//!
//! Every decoder is bounded and treats its input as hostile. The agent
//! itself (mounts, `pivot_root`, the command, the sessions) is the
//! package's binary (`src/main.rs`, `src/guest/`), built statically for
//! the guest by monocore's build script: none of it is compiled into a
//! host program.

pub mod control;
pub mod paths;
pub mod report;
pub mod spec;
pub mod wire;
