//! `mounts`: directory bind mounts become mapped directories; the standard
//! container mounts are the guest's own; anything else is refused.

use std::path::Path;

use monocore::{config::PathPair, vm::MicroVmConfig};
use serde_json::Value;

use super::{
    Notes,
    error::{Refusal, SpecError},
    fields::{Fields, array, string, strings},
    path::SpecPath,
};

/// What happens to a standard container mount (one containerd and CRI put
/// in every spec) in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// The guest agent mounts this file system there itself (with its own
    /// options).
    GuestMounts,
    /// Not mounted in the guest; what is at that path in the root is used.
    NotMounted,
}

/// The standard container mounts: destination, type, and what the guest
/// does with them.
pub const STANDARD_MOUNTS: [(&str, &str, Standard); 9] = [
    ("/proc", "proc", Standard::GuestMounts),
    ("/sys", "sysfs", Standard::GuestMounts),
    // The guest mounts devtmpfs at /dev: the VM's own devices.
    ("/dev", "tmpfs", Standard::GuestMounts),
    ("/dev/pts", "devpts", Standard::GuestMounts),
    ("/dev/shm", "tmpfs", Standard::GuestMounts),
    ("/dev/mqueue", "mqueue", Standard::NotMounted),
    ("/run", "tmpfs", Standard::NotMounted),
    ("/sys/fs/cgroup", "cgroup", Standard::NotMounted),
    ("/sys/fs/cgroup", "cgroup2", Standard::NotMounted),
];

/// Options of a bind mount that a shared directory honours: it is a bind,
/// read-write, and private (mounts made later on either side are not seen
/// by the other).
const BIND_OPTIONS: [&str; 5] = ["bind", "rbind", "rw", "private", "rprivate"];

pub(super) fn map(
    value: &Value,
    at: SpecPath,
    config: &mut MicroVmConfig,
    notes: &mut Notes,
) -> Result<(), SpecError> {
    for (i, mount) in array(value, &at)?.iter().enumerate() {
        one(mount, at.index(i), config, notes)?;
    }
    Ok(())
}

fn one(
    value: &Value,
    at: SpecPath,
    config: &mut MicroVmConfig,
    notes: &mut Notes,
) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let text = |fields: &mut Fields<'_>, key| -> Result<(String, SpecPath), SpecError> {
        match fields.take(key) {
            Some((v, at)) => Ok((string(v, &at)?.to_owned(), at)),
            None => Ok((String::new(), at.key(key))),
        }
    };
    let (destination, _) = text(&mut fields, "destination")?;
    let (kind, kind_at) = text(&mut fields, "type")?;
    let (source, source_at) = text(&mut fields, "source")?;
    let (options, options_at) = match fields.take("options") {
        Some((v, at)) => (strings(v, &at)?, at),
        None => (Vec::new(), at.key("options")),
    };
    for key in ["uidMappings", "gidMappings"] {
        if let Some((v, at)) = fields.take(key) {
            return Err(SpecError::refused(
                at,
                Refusal::IdMappings(super::fields::quote(v)),
            ));
        }
    }
    fields.finish()?;

    let is_bind = kind == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
    if !is_bind {
        return match STANDARD_MOUNTS
            .iter()
            .find(|(d, t, _)| *d == destination && *t == kind)
        {
            Some((_, _, Standard::GuestMounts)) => {
                notes.not_applied(
                    at,
                    "a standard container mount: the guest agent mounts its own there (its options are the agent's)",
                );
                Ok(())
            }
            Some((_, _, Standard::NotMounted)) => {
                notes.not_applied(
                    at,
                    "a standard container mount that the guest does not make: the VM's own kernel already isolates it; the root's directory is used",
                );
                Ok(())
            }
            None => Err(SpecError::refused(
                kind_at,
                Refusal::MountType { destination, kind },
            )),
        };
    }
    if let Some((i, option)) = options
        .iter()
        .enumerate()
        .find(|(_, o)| !BIND_OPTIONS.contains(o))
    {
        return Err(SpecError::refused(
            options_at.index(i),
            Refusal::MountOption((*option).to_owned()),
        ));
    }
    if !source.starts_with('/') {
        return Err(SpecError::refused(source_at, Refusal::BindRelative(source)));
    }
    match std::fs::metadata(Path::new(&source)) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(SpecError::refused(
                source_at,
                Refusal::BindNotADirectory(source),
            ));
        }
        Err(_) => return Err(SpecError::refused(source_at, Refusal::BindMissing(source))),
    }
    config
        .mapped_dirs
        .push(PathPair::with_distinct(source.into(), destination.into()));
    Ok(())
}
