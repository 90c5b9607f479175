//! monocore's guest agent and the protocol between it and the host.
//!
//! The agent is a small static program that monocore places in each VM's
//! private root filesystem and that libkrun's init runs as the VM's
//! command. It mounts the guest's real root filesystem and the mapped
//! directories, switches into that root, sets resource limits, the working
//! directory and the environment, and then executes the user's command, so
//! that nothing of the command travels on the kernel command line.
//!
//! This library holds the two messages the host and the agent exchange,
//! both as files in the VM's private root:
//! - [`spec`]: host to agent, what to set up and run;
//! - [`report`]: agent to host, whether set-up succeeded.
//!
//! Both decoders are bounded and treat their input as hostile.

pub mod control;
pub mod guest;
pub mod paths;
pub mod report;
pub mod spec;
pub mod wire;
