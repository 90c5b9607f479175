//! Containers inside the VM: commands of the control channel that run in a
//! mount namespace and root of their own (a pod's app containers).
//!
//! A container is built by the session thread that serves its first
//! command ([`mounts`]): the thread leaves the agent's namespace for a new
//! one, sets it up, and starts the command from there, so the command
//! starts inside. The agent remembers the container by name (its namespace
//! and root, as fds the thread opened itself) until that first command
//! ends; a later command may join it by name. A container built by a
//! `Prepare` request has no first command: it is kept until `Discard`.
//! Its system mounts come ready-made ([`templates`]). Containers share the
//! VM's pid, UTS and network namespaces, its kernel and its users: they are apart in
//! what they see of the file system, not a security boundary between each
//! other (the VM is the boundary).

mod mounts;
mod resolve;
pub(super) mod sys;
mod templates;

use std::{
    collections::HashMap,
    ffi::{CStr, CString},
    os::fd::{AsFd, OwnedFd},
    sync::{Arc, Mutex, PoisonError},
};

use monocore_agent::{
    control::ContainerSetup,
    report::{Step, escape},
};

use super::setup::{Failure, fail};

/// Where the system mounts every container copies are built, once, in the
/// agent's namespace (see [`templates`]).
const TEMPLATES: &CStr = c"/dev/.monocore-containers";

const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

/// A running container.
struct Container {
    ns: OwnedFd,
    root: OwnedFd,
    /// Built by `Prepare`: kept until `Discard` (else it lives as long as
    /// the command that created it).
    kept: bool,
}

enum Slot {
    /// Its first command's session is building it.
    Starting,
    Running(Container),
}

type Table = Arc<Mutex<HashMap<Vec<u8>, Slot>>>;

/// The VM's containers, by name.
pub(crate) struct Containers {
    table: Table,
    /// Where the system mounts' templates are ([`TEMPLATES`]).
    templates: CString,
    /// Whether they are built.
    templates_built: Mutex<bool>,
    /// The next container's `/dev`.
    devs: templates::DevSpares,
}

impl Default for Containers {
    fn default() -> Self {
        Self::with_templates(TEMPLATES)
    }
}

/// A container a session created: the agent forgets it when this is
/// dropped (when its first command has ended, or could not start), and its
/// name is free again.
pub(crate) struct Created {
    table: Table,
    name: Vec<u8>,
    /// Whether dropping it forgets the container (not once kept).
    armed: bool,
}

impl Created {
    /// Keeps the container beyond this session: its name stays taken.
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Only this session can have put the name there, and only it
        // removes it (`Discard` refuses a container that is not kept).
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

fn named(what: &str, name: &[u8]) -> Vec<u8> {
    format!("{what} {}", escape(name, 200)).into_bytes()
}

impl Containers {
    /// No containers; the system mounts' templates will be built in
    /// `templates`.
    pub(crate) fn with_templates(templates: &CStr) -> Self {
        Self {
            table: Table::default(),
            templates: templates.to_owned(),
            templates_built: Mutex::new(false),
            devs: templates::DevSpares::default(),
        }
    }

    /// Builds the container `setup` and moves the calling thread into it,
    /// so that what it forks next starts inside. A name in use is
    /// `EEXIST`.
    pub(crate) fn create(&self, setup: &ContainerSetup) -> Result<Created, Failure> {
        self.build(setup, false)
    }

    /// Builds the container `setup` (the calling thread ends up inside it)
    /// and keeps it, with no process, until [`discard`](Self::discard).
    pub(crate) fn prepare(&self, setup: &ContainerSetup) -> Result<(), Failure> {
        self.build(setup, true).map(Created::keep)
    }

    /// Forgets the kept container `name`: its name is free, and its mounts
    /// go once no process is left in it. An unknown name is `ENOENT`; a
    /// container that a command created (it lives as long as that
    /// command), or one still being built, is `EBUSY`.
    pub(crate) fn discard(&self, name: &[u8]) -> Result<(), Failure> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        match table.get(name) {
            Some(Slot::Running(Container { kept: true, .. })) => {
                table.remove(name);
                Ok(())
            }
            Some(_) => Err(fail(Step::Container, &named("not a kept container:", name))(EBUSY)),
            None => Err(fail(Step::Container, &named("no container", name))(ENOENT)),
        }
    }

    fn build(&self, setup: &ContainerSetup, kept: bool) -> Result<Created, Failure> {
        {
            let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
            if table.contains_key(&setup.name) {
                return Err(fail(Step::Container, &named("name in use:", &setup.name))(
                    EEXIST,
                ));
            }
            table.insert(setup.name.clone(), Slot::Starting);
        }
        let created = Created {
            table: Arc::clone(&self.table),
            name: setup.name.clone(),
            armed: true,
        };
        // Before the thread leaves the agent's namespace, where it lives.
        self.build_templates()?;
        let dev = self.devs.take(&self.templates)?;
        let entered = mounts::enter_new(setup, &self.templates, dev)?;
        if let Some(hostname) = &setup.hostname {
            sys::set_hostname(hostname).map_err(fail(Step::Container, b"hostname"))?;
        }
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                setup.name.clone(),
                Slot::Running(Container {
                    ns: entered.ns,
                    root: entered.root,
                    kept,
                }),
            );
        Ok(created)
    }

    /// Moves the calling thread into the running container `name` (its
    /// mount namespace and root). An unknown name, or a container whose
    /// first command has ended, is `ENOENT`.
    pub(crate) fn join(&self, name: &[u8]) -> Result<(), Failure> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(Slot::Running(container)) = table.get(name) else {
            return Err(fail(Step::Container, &named("no running container", name))(
                ENOENT,
            ));
        };
        let failed = |what: &[u8]| {
            fail(
                Step::Container,
                &named(&String::from_utf8_lossy(what), name),
            )
        };
        sys::join_mounts(container.ns.as_fd()).map_err(failed(b"setns into"))?;
        sys::change_root(container.root.as_fd()).map_err(failed(b"chroot into"))
    }

    /// Builds the system mounts' templates the first time a container is
    /// created.
    fn build_templates(&self) -> Result<(), Failure> {
        let mut built = self
            .templates_built
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !*built {
            templates::build(&self.templates)?;
            *built = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
