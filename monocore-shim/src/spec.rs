//! The bundle's OCI runtime spec (`config.json`) as a validated microVM.
//!
//! Each field is either mapped to [`MicroVmConfig`], accepted because the VM
//! honours it by being a VM (a new PID namespace, a device rule that denies,
//! a standard `/proc` mount), accepted as not applicable and noted (the
//! host-side confinement of a container process: capabilities, seccomp,
//! masked paths), or refused with a [`SpecError`] that names the field and
//! the value. A field this mapping does not know is refused, never dropped.
//! The result then goes through [`MicroVm::from_config`], the same
//! validation as every other config. The README's "Kubernetes and
//! containerd" section has the table.

use std::path::{Path, PathBuf};

use monocore::vm::{MicroVm, MicroVmConfig};
use serde_json::Value;

mod error;
mod fields;
mod linux;
mod mounts;
mod network;
mod path;
mod pod_size;
mod process;

pub use error::{Refusal, SpecError};
pub use path::SpecPath;

use fields::{Fields, boolean, quote, string};

/// The guest RAM when the spec sets no memory limit (MiB): monocore's
/// default.
pub const DEFAULT_RAM_MIB: u32 = monocore::config::DEFAULT_RAM_MIB;
/// The vCPU count when the spec sets no CPU quota: monocore's default.
pub const DEFAULT_NUM_VCPUS: u8 = monocore::config::DEFAULT_NUM_VCPUS;

/// Fields accepted but not applied inside the guest, each with the reason
/// (the shim logs them at `create`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(Vec<(SpecPath, &'static str)>);

impl Notes {
    fn not_applied(&mut self, at: SpecPath, reason: &'static str) {
        self.0.push((at, reason));
    }

    /// Each field with its reason, in spec order.
    pub fn entries(&self) -> &[(SpecPath, &'static str)] {
        &self.0
    }
}

/// What the task is, which decides how some fields map (see
/// [`crate::pod::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A container with a VM of its own (`ctr run`).
    Standalone,
    /// A pod's sandbox: its VM, which runs no process of the spec's.
    Sandbox,
    /// A container of a pod, run in the pod's VM by the agent.
    PodContainer,
}

/// A host file or directory bound into a pod container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBind {
    /// The host path (a file or a directory).
    pub source: PathBuf,
    /// Where the container sees it.
    pub destination: String,
    /// Writes fail with `EROFS`.
    pub readonly: bool,
}

/// The user a pod container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// What a pod's tasks need beyond a VM config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodParts {
    /// The pod's hostname (a sandbox's `hostname`).
    pub hostname: Option<String>,
    /// A pod container's root is read-only.
    pub readonly_root: bool,
    /// A pod container's bind mounts, in spec order.
    pub binds: Vec<HostBind>,
    /// A pod container's user.
    pub user: User,
    /// A pod container's process has a terminal.
    pub terminal: bool,
    /// The pod's network namespace (a sandbox's, by path): the VM helper
    /// runs in it. The guest has no network device yet.
    pub network_namespace: Option<PathBuf>,
}

/// The mapping's output, filled field by field.
#[derive(Debug)]
pub(crate) struct Out<'a> {
    pub config: &'a mut MicroVmConfig,
    pub notes: &'a mut Notes,
    pub pod: &'a mut PodParts,
    pub role: Role,
}

/// A spec mapped to a validated microVM.
#[derive(Debug)]
pub struct Mapped {
    /// The VM to run (for a pod container: its command, env, workdir and
    /// rlimits, validated by the same rules, with its root).
    pub vm: MicroVm,
    /// What was accepted without being applied.
    pub notes: Notes,
    /// What a pod's task needs besides.
    pub pod: PodParts,
}

/// Reads `bundle/config.json` and maps it (see [`map`]).
pub fn read(bundle: &Path, role: Role) -> Result<Mapped, SpecError> {
    let spec = read_value(bundle)?;
    map(&spec, bundle, role)
}

/// Reads `bundle/config.json`.
pub fn read_value(bundle: &Path) -> Result<Value, SpecError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| SpecError::Parse { path, source })
}

/// The sandbox runs no process of its spec: its VM is the sandbox.
const NO_SANDBOX_PROCESS: &str = "the pod's sandbox runs no process: its microVM is the sandbox (the pause process has nothing to hold in a VM)";

/// Maps a spec whose relative paths are relative to `bundle`, for `role`.
pub fn map(spec: &Value, bundle: &Path, role: Role) -> Result<Mapped, SpecError> {
    let at = SpecPath::root();
    let mut notes = Notes::default();
    let mut pod = PodParts::default();
    let mut fields = Fields::of(spec, at.clone())?;
    // Informational: which spec version the document follows. Annotations
    // are metadata for tools (the pod's were read by `pod::kind`), but for
    // the pod's size on a sandbox and monocore's own (`io.monocore.*`, the
    // VM's network: `spec/network.rs`), mapped below.
    fields.take("ociVersion");
    let annotations = fields.take("annotations");

    let root = match fields.take("root") {
        Some((v, at)) => root(v, at, bundle, role, &mut notes, &mut pod)?,
        None => return Err(SpecError::refused(at.key("root"), Refusal::NoRoot)),
    };
    let mut config = MicroVmConfig::new(root, DEFAULT_RAM_MIB);
    config.num_vcpus = DEFAULT_NUM_VCPUS;
    let mut out = Out {
        config: &mut config,
        notes: &mut notes,
        pod: &mut pod,
        role,
    };

    match (fields.take("process"), role) {
        (Some((_, at)), Role::Sandbox) => out.notes.not_applied(at, NO_SANDBOX_PROCESS),
        (Some((v, at)), _) => process::map(v, at, &mut out)?,
        (None, Role::Sandbox) => {}
        (None, _) => {
            return Err(SpecError::refused(
                at.key("process").key("args"),
                Refusal::NoCommand,
            ));
        }
    }
    if let Some((v, at)) = fields.take("hostname") {
        hostname(v, at, &mut out)?;
    }
    if let Some((v, at)) = fields.take("domainname") {
        return Err(SpecError::refused(
            at.clone(),
            Refusal::Domainname(string(v, &at)?.to_owned()),
        ));
    }
    if let Some((v, at)) = fields.take("hooks") {
        return Err(SpecError::refused(at, Refusal::Hooks(quote(v))));
    }
    if let Some((v, at)) = fields.take("mounts") {
        mounts::map(v, at, &mut out)?;
    }
    if let Some((v, at)) = fields.take("linux") {
        linux::map(v, at, &mut out)?;
    }
    if let Some((v, at)) = annotations {
        if role == Role::Sandbox {
            pod_size::apply(v, &at, &mut out)?;
        }
        network::apply(v, &at, &mut out)?;
    }
    fields.finish()?;
    let vm = MicroVm::from_config(config).map_err(SpecError::Invalid)?;
    Ok(Mapped { vm, notes, pod })
}

/// A process that `exec` starts in a pod container: the OCI `process`
/// object containerd sends, mapped as a pod container's process is.
#[derive(Debug)]
pub struct ExecProcess {
    /// Its command, environment, working directory and limits, validated
    /// like every config (with the container's root).
    pub config: MicroVmConfig,
    /// Its user and terminal.
    pub pod: PodParts,
    /// What was accepted without being applied.
    pub notes: Notes,
}

/// Maps `process`, an exec's process spec, for the container whose root
/// is `root`.
pub fn map_exec(process: &Value, root: &Path) -> Result<ExecProcess, SpecError> {
    let mut notes = Notes::default();
    let mut pod = PodParts::default();
    let mut config = MicroVmConfig::new(root.to_path_buf(), DEFAULT_RAM_MIB);
    let mut out = Out {
        config: &mut config,
        notes: &mut notes,
        pod: &mut pod,
        role: Role::PodContainer,
    };
    process::map(process, SpecPath::root(), &mut out)?;
    let vm = MicroVm::from_config(config).map_err(SpecError::Invalid)?;
    Ok(ExecProcess {
        config: vm.get_config().clone(),
        pod,
        notes,
    })
}

/// `hostname`: a sandbox's is the pod's; a pod container has the pod's
/// (one UTS namespace per pod VM); a VM of its own has its kernel's.
fn hostname(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let name = string(value, &at)?;
    match out.role {
        Role::Sandbox => {
            if name.is_empty() || name.len() > 64 || name.bytes().any(|b| b == 0 || b == b'/') {
                return Err(SpecError::refused(at, Refusal::Hostname(name.to_owned())));
            }
            out.pod.hostname = Some(name.to_owned());
        }
        Role::PodContainer => out.notes.not_applied(
            at,
            "a pod container has its pod's hostname: one UTS namespace per pod microVM",
        ),
        Role::Standalone => {
            return Err(SpecError::refused(at, Refusal::Hostname(name.to_owned())));
        }
    }
    Ok(())
}

/// `root`: the directory (relative to the bundle, or absolute). Read-only
/// is a pod container's choice; a sandbox's root is never shown to the
/// guest; a VM of its own needs a writable one.
fn root(
    value: &Value,
    at: SpecPath,
    bundle: &Path,
    role: Role,
    notes: &mut Notes,
    pod: &mut PodParts,
) -> Result<PathBuf, SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    if let Some((v, at)) = fields.take("readonly")
        && boolean(v, &at)?
    {
        match role {
            Role::Standalone => return Err(SpecError::refused(at, Refusal::ReadonlyRoot)),
            Role::Sandbox => notes.not_applied(at, NO_SANDBOX_PROCESS),
            Role::PodContainer => pod.readonly_root = true,
        }
    }
    let path = match fields.take("path") {
        Some((v, at)) => bundle.join(string(v, &at)?),
        None => return Err(SpecError::refused(at.key("path"), Refusal::NoRoot)),
    };
    fields.finish()?;
    Ok(path)
}

#[cfg(test)]
mod tests;
