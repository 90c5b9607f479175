//! `mounts`: directory bind mounts become mapped directories; the standard
//! container mounts are the guest's own; anything else is refused.

use std::path::Path;

use monocore::config::PathPair;
use serde_json::Value;

use super::{
    HostBind, NO_SANDBOX_PROCESS, Out, Role,
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

pub(super) fn map(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    for (i, mount) in array(value, &at)?.iter().enumerate() {
        one(mount, at.index(i), out)?;
    }
    Ok(())
}

/// One mount's fields, each with where it is in the spec.
struct Mount<'a> {
    destination: String,
    kind: (String, SpecPath),
    source: (String, SpecPath),
    options: (Vec<&'a str>, SpecPath),
}

impl<'a> Mount<'a> {
    fn read(value: &'a Value, at: &SpecPath) -> Result<Self, SpecError> {
        let mut fields = Fields::of(value, at.clone())?;
        let mut text = |key| -> Result<(String, SpecPath), SpecError> {
            match fields.take(key) {
                Some((v, at)) => Ok((string(v, &at)?.to_owned(), at)),
                None => Ok((String::new(), at.key(key))),
            }
        };
        let (destination, _) = text("destination")?;
        let kind = text("type")?;
        let source = text("source")?;
        let options = match fields.take("options") {
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
        Ok(Self {
            destination,
            kind,
            source,
            options,
        })
    }

    fn is_bind(&self) -> bool {
        self.kind.0 == "bind" || self.options.0.iter().any(|o| *o == "bind" || *o == "rbind")
    }

    /// The first option not in `allowed`, refused.
    fn only_options(&self, allowed: &[&str]) -> Result<(), SpecError> {
        match self
            .options
            .0
            .iter()
            .enumerate()
            .find(|(_, o)| !allowed.contains(o))
        {
            Some((i, option)) => Err(SpecError::refused(
                self.options.1.index(i),
                Refusal::MountOption((*option).to_owned()),
            )),
            None => Ok(()),
        }
    }

    /// The source, which must be an absolute path.
    fn absolute_source(&self) -> Result<&Path, SpecError> {
        let (source, at) = &self.source;
        if !source.starts_with('/') {
            return Err(SpecError::refused(
                at.clone(),
                Refusal::BindRelative(source.clone()),
            ));
        }
        Ok(Path::new(source))
    }
}

fn one(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mount = Mount::read(value, &at)?;
    if !mount.is_bind() {
        return standard(mount, at, out);
    }
    match out.role {
        Role::Sandbox => {
            out.notes.not_applied(at, NO_SANDBOX_PROCESS);
            Ok(())
        }
        Role::Standalone => directory_bind(&mount, out),
        Role::PodContainer => pod_bind(&mount, at, out),
    }
}

/// A standard container mount: the guest's own, or not made at all.
fn standard(mount: Mount<'_>, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let Mount {
        destination, kind, ..
    } = mount;
    match STANDARD_MOUNTS
        .iter()
        .find(|(d, t, _)| *d == destination && *t == kind.0)
    {
        Some((_, _, Standard::GuestMounts)) => {
            out.notes.not_applied(
                at,
                "a standard container mount: the guest agent mounts its own there (its options are the agent's)",
            );
            Ok(())
        }
        Some((_, _, Standard::NotMounted)) => {
            out.notes.not_applied(
                at,
                "a standard container mount that the guest does not make: the VM's own kernel already isolates it; the root's directory is used",
            );
            Ok(())
        }
        None => Err(SpecError::refused(
            kind.1,
            Refusal::MountType {
                destination,
                kind: kind.0,
            },
        )),
    }
}

/// A VM of its own: a directory bind becomes a mapped directory.
fn directory_bind(mount: &Mount<'_>, out: &mut Out<'_>) -> Result<(), SpecError> {
    mount.only_options(&BIND_OPTIONS)?;
    let source = mount.absolute_source()?;
    let (text, at) = &mount.source;
    match std::fs::metadata(source) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(SpecError::refused(
                at.clone(),
                Refusal::BindNotADirectory(text.clone()),
            ));
        }
        Err(_) => {
            return Err(SpecError::refused(
                at.clone(),
                Refusal::BindMissing(text.clone()),
            ));
        }
    }
    out.config.mapped_dirs.push(PathPair::with_distinct(
        text.as_str().into(),
        mount.destination.as_str().into(),
    ));
    Ok(())
}

/// Options of a pod container's bind mount: a bind (recursive or not),
/// read-write or read-only, private.
const POD_BIND_OPTIONS: [&str; 6] = ["bind", "rbind", "rw", "ro", "private", "rprivate"];

/// A pod container: a file or directory bind, placed in the pod's share
/// and bound at its destination by the agent; `/dev/shm` is the pod's.
fn pod_bind(mount: &Mount<'_>, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    if mount.destination == "/dev/shm" {
        out.notes.not_applied(
            at,
            "the pod's /dev/shm: one tmpfs in the pod's microVM, shared by its containers",
        );
        return Ok(());
    }
    mount.only_options(&POD_BIND_OPTIONS)?;
    let source = mount.absolute_source()?;
    let (text, source_at) = &mount.source;
    match std::fs::metadata(source) {
        Ok(meta) if meta.is_dir() || meta.is_file() => {}
        Ok(_) => {
            return Err(SpecError::refused(
                source_at.clone(),
                Refusal::BindNotAFileOrDirectory(text.clone()),
            ));
        }
        Err(_) => {
            return Err(SpecError::refused(
                source_at.clone(),
                Refusal::BindMissing(text.clone()),
            ));
        }
    }
    out.pod.binds.push(HostBind {
        source: source.to_path_buf(),
        destination: mount.destination.clone(),
        readonly: mount.options.0.contains(&"ro"),
    });
    Ok(())
}
