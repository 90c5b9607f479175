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

use std::path::Path;

use monocore::vm::{MicroVm, MicroVmConfig};
use serde_json::Value;

mod error;
mod fields;
mod linux;
mod mounts;
mod path;
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

/// A spec mapped to a validated microVM.
#[derive(Debug)]
pub struct Mapped {
    /// The VM to run.
    pub vm: MicroVm,
    /// What was accepted without being applied.
    pub notes: Notes,
}

/// Reads `bundle/config.json` and maps it (see [`map`]).
pub fn read(bundle: &Path) -> Result<Mapped, SpecError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Value =
        serde_json::from_slice(&text).map_err(|source| SpecError::Parse { path, source })?;
    map(&spec, bundle)
}

/// Maps a spec whose relative paths are relative to `bundle`.
pub fn map(spec: &Value, bundle: &Path) -> Result<Mapped, SpecError> {
    let at = SpecPath::root();
    let mut notes = Notes::default();
    let mut fields = Fields::of(spec, at.clone())?;
    // Informational: which spec version the document follows, and metadata
    // for tools; neither asks the runtime for anything.
    fields.take("ociVersion");
    fields.take("annotations");

    let root = match fields.take("root") {
        Some((v, at)) => root(v, at, bundle)?,
        None => return Err(SpecError::refused(at.key("root"), Refusal::NoRoot)),
    };
    let mut config = MicroVmConfig::new(root, DEFAULT_RAM_MIB);
    config.num_vcpus = DEFAULT_NUM_VCPUS;

    match fields.take("process") {
        Some((v, at)) => process::map(v, at, &mut config, &mut notes)?,
        None => {
            return Err(SpecError::refused(
                at.key("process").key("args"),
                Refusal::NoCommand,
            ));
        }
    }
    if let Some((v, at)) = fields.take("hostname") {
        return Err(SpecError::refused(
            at.clone(),
            Refusal::Hostname(string(v, &at)?.to_owned()),
        ));
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
        mounts::map(v, at, &mut config, &mut notes)?;
    }
    if let Some((v, at)) = fields.take("linux") {
        linux::map(v, at, &mut config, &mut notes)?;
    }
    fields.finish()?;
    let vm = MicroVm::from_config(config).map_err(SpecError::Invalid)?;
    Ok(Mapped { vm, notes })
}

/// `root`: the directory (relative to the bundle, or absolute), read-write.
fn root(value: &Value, at: SpecPath, bundle: &Path) -> Result<std::path::PathBuf, SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    if let Some((v, at)) = fields.take("readonly")
        && boolean(v, &at)?
    {
        return Err(SpecError::refused(at, Refusal::ReadonlyRoot));
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
