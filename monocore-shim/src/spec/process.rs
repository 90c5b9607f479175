//! `process`: the command, its environment, working directory and limits.

use monocore::{
    config::EnvPair,
    vm::{LinuxRlimit, LinuxRlimitResource},
};
use serde_json::Value;

use super::{
    Out, Role,
    error::{Refusal, SpecError},
    fields::{Fields, array, boolean, string, strings, unsigned},
    path::SpecPath,
};

/// Why the process's host-side confinement is not applied: the guest
/// command is confined by the VM instead.
const CONFINED_BY_THE_VM: &str = "host-side confinement of a container process; the microVM boundary confines the guest command instead (not applied inside the guest)";

pub(super) fn map(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    if let Some((v, at)) = fields.take("terminal")
        && boolean(v, &at)?
    {
        // A pod container's process gets a pseudo-terminal in the guest.
        if out.role != Role::PodContainer {
            return Err(SpecError::refused(at, Refusal::Terminal));
        }
        out.pod.terminal = true;
    }
    if let Some((v, at)) = fields.take("user") {
        user(v, at, out)?;
    }
    let args = match fields.take("args") {
        Some((v, at)) => strings(v, &at)?,
        None => Vec::new(),
    };
    let Some((exec, rest)) = args.split_first() else {
        return Err(SpecError::refused(at.key("args"), Refusal::NoCommand));
    };
    out.config.exec_path = Some((*exec).into());
    out.config.args = rest.iter().map(|a| (*a).to_owned()).collect();
    if let Some((v, at)) = fields.take("env") {
        for (i, entry) in strings(v, &at)?.into_iter().enumerate() {
            let Some((name, value)) = entry.split_once('=') else {
                return Err(SpecError::refused(
                    at.index(i),
                    Refusal::EnvEntry(entry.to_owned()),
                ));
            };
            out.config.env.push(EnvPair::new(name, value));
        }
    }
    if let Some((v, at)) = fields.take("cwd") {
        out.config.workdir_path = Some(string(v, &at)?.into());
    }
    if let Some((v, at)) = fields.take("rlimits") {
        for (i, limit) in array(v, &at)?.iter().enumerate() {
            out.config.rlimits.push(rlimit(limit, at.index(i))?);
        }
    }
    for key in [
        "capabilities",
        "noNewPrivileges",
        "apparmorProfile",
        "selinuxLabel",
        "oomScoreAdj",
    ] {
        if let Some((_, at)) = fields.take(key) {
            out.notes.not_applied(at, CONFINED_BY_THE_VM);
        }
    }
    fields.finish()
}

/// `process.user`: only root, which is what the guest command runs as.
fn user(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let mut id = |key| -> Result<u64, SpecError> {
        match fields.take(key) {
            Some((v, at)) => unsigned(v, &at),
            None => Ok(0),
        }
    };
    let (uid, gid) = (id("uid")?, id("gid")?);
    if out.role == Role::PodContainer {
        // The agent switches to them; ids beyond 32 bits name no one.
        let (Ok(uid32), Ok(gid32)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(SpecError::refused(at, Refusal::User { uid, gid }));
        };
        out.pod.user.uid = uid32;
        out.pod.user.gid = gid32;
    } else if (uid, gid) != (0, 0) {
        return Err(SpecError::refused(at, Refusal::User { uid, gid }));
    }
    if let Some((v, at)) = fields.take("umask") {
        return Err(SpecError::refused(
            at.clone(),
            Refusal::Umask(unsigned(v, &at)?),
        ));
    }
    if let Some((v, at)) = fields.take("additionalGids") {
        let groups = array(v, &at)?;
        if out.role == Role::PodContainer {
            for (i, group) in groups.iter().enumerate() {
                let at = at.index(i);
                let id = unsigned(group, &at)?;
                let id = u32::try_from(id)
                    .map_err(|_| SpecError::refused(at, Refusal::User { uid: 0, gid: id }))?;
                out.pod.user.groups.push(id);
            }
            return fields.finish();
        }
        out.notes.not_applied(
            at,
            "supplementary groups of root: root in the guest needs none to access anything",
        );
    }
    fields.finish()
}

/// One `process.rlimits` entry.
fn rlimit(value: &Value, at: SpecPath) -> Result<LinuxRlimit, SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let mut number = |key| -> Result<u64, SpecError> {
        match fields.take(key) {
            Some((v, at)) => unsigned(v, &at),
            None => Ok(0),
        }
    };
    let (soft, hard) = (number("soft")?, number("hard")?);
    let kind = match fields.take("type") {
        Some((v, at)) => (string(v, &at)?, at),
        None => ("", at.key("type")),
    };
    let resource: LinuxRlimitResource = kind
        .0
        .parse()
        .map_err(|_| SpecError::refused(kind.1, Refusal::Rlimit(kind.0.to_owned())))?;
    fields.finish()?;
    Ok(LinuxRlimit::new(resource, soft, hard))
}
