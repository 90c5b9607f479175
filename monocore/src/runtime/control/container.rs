//! [`GuestContainer`]: a container for a command to create inside a
//! running VM.

use std::{
    ffi::{OsStr, OsString},
    os::unix::ffi::OsStrExt,
};

use monocore_agent::control::{Bind, ContainerSetup};

use super::command::command_error;
use crate::error::GuestCommandError;

/// A container to create inside a running VM, for the command that
/// [`GuestCommand::in_new_container`](super::GuestCommand::in_new_container)
/// runs in it: a mount namespace of its own whose root is `root`, an
/// existing directory of the VM.
///
/// The guest agent gives it a `/proc` and a read-only `/sys` (copies of
/// mounts it builds once per VM: the containers share the VM's processes
/// and kernel), a `/dev` of its own (the basic device nodes, a `devpts`
/// instance of its own at `/dev/pts`) and the VM's shared `/dev/shm` (one
/// tmpfs for every container of the VM). Then it mounts each [`bind`](Self::bind) in order and switches into
/// the root with `pivot_root`. A target is resolved inside the root (a
/// symlink in it cannot lead out of it) and created if missing, as a file
/// for a file source and a directory for a directory. A container made
/// with
/// [`GuestCommand::in_new_container`](super::GuestCommand::in_new_container)
/// lives as long as that command; one made ahead with
/// [`VmHandle::prepare_container`](crate::vm::VmHandle::prepare_container)
/// until it is discarded. Other commands can run in it meanwhile
/// ([`GuestCommand::in_container`](super::GuestCommand::in_container)).
/// Containers share the VM's processes, network, hostname and kernel:
/// they see different files, and are not a boundary between each other.
///
/// ```
/// use monocore::vm::{GuestCommand, GuestContainer};
/// let web = GuestContainer::new("web", "/pod/web/rootfs")
///     .readonly_root(true)
///     .hostname("pod-1")
///     .bind("/pod/etc-hosts", "/etc/hosts", false)
///     .bind("/pod/secrets/token", "/var/run/secrets/token", true);
/// assert_eq!(web.name(), "web");
/// let command = GuestCommand::new("nginx").in_new_container(web);
/// assert!(command.validate().is_ok());
///
/// // A bind's target is a path inside the container.
/// let bad = GuestContainer::new("web", "/pod/web/rootfs").bind("/pod/data", "data", false);
/// let err = GuestCommand::new("sh").in_new_container(bad).validate().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "guest command: container.binds[0].target \"data\" is not an absolute path \
///      (it must start with `/`)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestContainer {
    pub(crate) setup: ContainerSetup,
}

fn bytes(s: impl Into<OsString>) -> Vec<u8> {
    s.into().as_bytes().to_vec()
}

impl GuestContainer {
    /// A container named `name` (unique among the VM's running
    /// containers; one path component: not empty, no `/`, no NUL, at most
    /// 255 bytes) whose root is `root` (an absolute path in the VM), with
    /// a writable root, no binds, and the VM's hostname left as it is.
    pub fn new(name: impl Into<OsString>, root: impl Into<OsString>) -> Self {
        Self {
            setup: ContainerSetup {
                name: bytes(name),
                root: bytes(root),
                ..ContainerSetup::default()
            },
        }
    }

    /// Mounts the root read-only (binds keep their own mode).
    pub fn readonly_root(mut self, readonly: bool) -> Self {
        self.setup.readonly_root = readonly;
        self
    }

    /// Sets the VM's hostname when the container is created (a pod's
    /// containers share the VM's UTS namespace, and so its hostname).
    pub fn hostname(mut self, hostname: impl Into<OsString>) -> Self {
        self.setup.hostname = Some(bytes(hostname));
        self
    }

    /// Adds a bind mount: `source` (an absolute path in the VM: a file or a
    /// directory) at `target` (an absolute path in the container, without
    /// `..`, not `/`), read-only (recursively: a write fails with `EROFS`)
    /// if `readonly`. Binds are mounted in the order they are added.
    ///
    /// A source on a share of the host (virtio-fs) is the host's file: a
    /// guest write reaches the host at once, and a host change reaches the
    /// guest within libkrun's virtio-fs attribute timeout (5 s).
    pub fn bind(
        mut self,
        source: impl Into<OsString>,
        target: impl Into<OsString>,
        readonly: bool,
    ) -> Self {
        self.setup.binds.push(Bind {
            source: bytes(source),
            target: bytes(target),
            readonly,
        });
        self
    }

    /// The container's name.
    pub fn name(&self) -> &OsStr {
        OsStr::from_bytes(&self.setup.name)
    }

    /// Checks every value as the guest agent will, without a VM: the
    /// first problem, named by its field (`container.binds[2].target`).
    ///
    /// ```
    /// use monocore::vm::GuestContainer;
    /// let err = GuestContainer::new("a/b", "/pod/a").validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "guest command: container.name \"a/b\" holds a `/` (a name is one path component)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), GuestCommandError> {
        self.setup
            .check()
            .map_err(|e| command_error(e, |field| self.setup.value(field)))
    }
}
