//! A task of this shim, whatever runs it: a VM (a container of its own, or
//! a pod's sandbox), a pod's container in its pod's VM, or an exec process
//! in a pod's container.

use std::sync::Arc;

use crate::{
    container::{Container, Status, StdioPaths},
    error::ShimError,
    exit::Exit,
    pod::{exec::Exec, member::Member},
};

/// A task of this shim: a VM (a container of its own, or a pod's
/// sandbox), or a pod's container in its pod's VM.
#[derive(Debug, Clone)]
pub enum Task {
    /// A VM.
    Vm(Arc<Container>),
    /// A pod's container.
    Member(Arc<Member>),
    /// An exec process of a pod's container.
    Exec(Arc<Member>, Arc<Exec>),
}

impl Task {
    /// Its bundle.
    pub fn bundle(&self) -> &std::path::Path {
        match self {
            Self::Vm(c) => &c.bundle,
            Self::Member(m) | Self::Exec(m, _) => &m.bundle,
        }
    }

    /// Its stream paths.
    pub fn stdio(&self) -> &StdioPaths {
        match self {
            Self::Vm(c) => &c.stdio,
            Self::Member(m) => &m.stdio,
            Self::Exec(_, e) => &e.stdio,
        }
    }

    /// Where it is.
    pub fn status(&self) -> Status {
        match self {
            Self::Vm(c) => c.status(),
            Self::Member(m) => m.status(),
            Self::Exec(_, e) => e.status(),
        }
    }

    /// `wait`.
    pub fn wait(&self) -> Exit {
        match self {
            Self::Vm(c) => c.wait(),
            Self::Member(m) => m.wait(),
            Self::Exec(_, e) => e.wait(),
        }
    }

    /// `kill`.
    pub fn kill(&self, signal: u32) -> Result<(), ShimError> {
        match self {
            Self::Vm(c) => c.kill(signal),
            Self::Member(m) => m.kill(signal),
            Self::Exec(_, e) => e.kill(signal),
        }
    }

    /// `delete`.
    pub fn delete(&self) -> Result<Exit, ShimError> {
        match self {
            Self::Vm(c) => c.delete(),
            Self::Member(m) => m.delete(),
            Self::Exec(m, e) => m.remove_exec(&e.exec_id),
        }
    }

    /// The pod's container it is, or runs in.
    pub fn member(&self) -> Option<&Arc<Member>> {
        match self {
            Self::Vm(_) => None,
            Self::Member(m) | Self::Exec(m, _) => Some(m),
        }
    }
}
