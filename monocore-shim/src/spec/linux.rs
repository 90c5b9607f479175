//! `linux`: namespaces, devices and resources.

use monocore::config::limits::MAX_VCPUS;
use serde_json::Value;

use super::{
    Out, Role,
    error::{Refusal, SpecError},
    fields::{Fields, array, boolean, quote, signed, string, unsigned},
    path::SpecPath,
};

/// The namespaces a microVM gives its command by being a VM: a fresh
/// instance of each (its own kernel, no network).
const VM_NAMESPACES: [&str; 6] = ["pid", "ipc", "uts", "mount", "network", "cgroup"];

/// The OCI default for `linux.resources.cpu.period` (µs).
const DEFAULT_CPU_PERIOD: u64 = 100_000;

const MIB: i64 = 1 << 20;

/// The sysctls containerd 2's CRI plugin adds to every pod sandbox with a
/// network namespace of its own, with the values it gives them
/// (`enable_unprivileged_ports` and `enable_unprivileged_icmp`, on by
/// default since containerd 2.0; off in 1.6 and 1.7).
const CRI_DEFAULT_SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

/// Why a sandbox's [`CRI_DEFAULT_SYSCTLS`] are noted rather than refused.
const CRI_DEFAULT_SYSCTL_NOT_APPLIED: &str = "containerd 2's CRI plugin sets it on every pod by default (enable_unprivileged_ports, enable_unprivileged_icmp), to let unprivileged processes bind ports below 1024 and open ICMP echo sockets in the pod's network namespace; the pod's microVM has its own kernel, which is not configured from the spec and keeps its defaults (both need root in the guest)";

/// The character devices every container may use (containerd's default
/// allow list: null, zero, full, random, urandom, tty, console, ptmx and
/// the pseudo-terminals), as (major, minor; `None` for any minor). The
/// guest has its own of each (its devtmpfs): no host device is involved, so
/// a rule that allows one of these is honoured.
const GUEST_DEVICES: [(u64, Option<u64>); 9] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
];

pub(super) fn map(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at)?;
    if let Some((v, at)) = fields.take("namespaces") {
        for (i, ns) in array(v, &at)?.iter().enumerate() {
            namespace(ns, at.index(i), out)?;
        }
    }
    for key in ["uidMappings", "gidMappings"] {
        if let Some((v, at)) = fields.take(key) {
            return Err(SpecError::refused(at, Refusal::IdMappings(quote(v))));
        }
    }
    if let Some((v, at)) = fields.take("devices") {
        let first = array(v, &at)?.first().map(device_name).unwrap_or_default();
        return Err(SpecError::refused(at.index(0), Refusal::Device(first)));
    }
    match fields.take("resources") {
        Some((_, at)) if out.role == Role::PodContainer => out.notes.not_applied(
            at,
            "a pod container shares its pod's microVM: the VM's RAM and vCPUs come from the pod's sandbox, and a container's own limits are not applied inside the guest",
        ),
        Some((v, at)) => resources(v, at, out)?,
        None => {}
    }
    if let Some((v, at)) = fields.take("sysctl") {
        sysctls(v, &at, out)?;
    }
    if let Some((_, at)) = fields.take("cgroupsPath") {
        out.notes.not_applied(
            at,
            "the VMM process is not moved into the container's cgroup; the VM's RAM and vCPUs are its limits",
        );
    }
    for key in ["seccomp", "maskedPaths", "readonlyPaths"] {
        if let Some((_, at)) = fields.take(key) {
            out.notes.not_applied(
                at,
                "host-side confinement of a container process; the microVM boundary confines the guest command instead (not applied inside the guest)",
            );
        }
    }
    fields.finish()
}

/// `linux.sysctl`: refused (the guest kernel is not configured from the
/// spec), except in a pod's sandbox the ones containerd 2's CRI plugin adds
/// to every pod with their default values, which are noted: refusing them
/// would refuse every pod under containerd 2's default config. (A pod that
/// asks for the same values itself cannot be told apart, and is noted too.)
fn sysctls(value: &Value, at: &SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    for (key, v) in super::fields::object(value, at)? {
        let cri_default = CRI_DEFAULT_SYSCTLS
            .iter()
            .any(|(k, default)| k == key && v.as_str() == Some(*default));
        if out.role == Role::Sandbox && cri_default {
            out.notes
                .not_applied(at.key(key), CRI_DEFAULT_SYSCTL_NOT_APPLIED);
        } else {
            return Err(SpecError::refused(
                at.key(key),
                Refusal::Sysctl(key.clone()),
            ));
        }
    }
    Ok(())
}

fn device_name(device: &Value) -> String {
    device
        .get("path")
        .and_then(Value::as_str)
        .map_or_else(|| quote(device), str::to_owned)
}

/// One `linux.namespaces` entry: a new namespace of a kind the VM gives by
/// itself is honoured; joining one, or a user namespace, is not.
fn namespace(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let kind = match fields.take("type") {
        Some((v, at)) => string(v, &at)?,
        None => "",
    };
    if let Some((v, at)) = fields.take("path") {
        match out.role {
            Role::PodContainer => out.notes.not_applied(
                at,
                "a namespace of the pod's: a pod container joins its pod by running in the pod's microVM",
            ),
            Role::Sandbox if kind == "network" => {
                out.pod.network_namespace = Some(string(v, &at)?.into());
            }
            Role::Sandbox => out.notes.not_applied(
                at,
                "a namespace of the host's: the pod's microVM has its own kernel",
            ),
            Role::Standalone => {
                return Err(SpecError::refused(
                    at.clone(),
                    Refusal::NamespacePath {
                        kind: kind.to_owned(),
                        path: string(v, &at)?.to_owned(),
                    },
                ));
            }
        }
    }
    if kind == "user" {
        return Err(SpecError::refused(at.key("type"), Refusal::UserNamespace));
    }
    if !VM_NAMESPACES.contains(&kind) {
        return Err(SpecError::refused(
            at.key("type"),
            Refusal::UnknownNamespace(kind.to_owned()),
        ));
    }
    fields.finish()
}

/// `linux.resources`: memory and CPU become the VM's size; device rules that
/// deny are honoured (the guest has no host devices); the rest is refused.
fn resources(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at)?;
    if let Some((v, at)) = fields.take("devices") {
        for (i, rule) in array(v, &at)?.iter().enumerate() {
            device_rule(rule, at.index(i))?;
        }
    }
    if let Some((v, at)) = fields.take("memory") {
        memory(v, at, out)?;
    }
    if let Some((v, at)) = fields.take("cpu") {
        cpu(v, at, out)?;
    }
    fields.finish_with(|v| Refusal::Resource(quote(v)))
}

/// One `linux.resources.devices` rule: one that denies is honoured (the
/// guest has no host devices); one that allows is honoured only for the
/// guest's own standard devices ([`GUEST_DEVICES`]).
fn device_rule(value: &Value, at: SpecPath) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let allow = match fields.take("allow") {
        Some((v, at)) => boolean(v, &at)?,
        None => false,
    };
    let kind = match fields.take("type") {
        Some((v, at)) => string(v, &at)?,
        None => "a",
    };
    let mut number = |key| match fields.take(key) {
        Some((v, at)) => unsigned(v, &at).map(Some),
        None => Ok(None),
    };
    let (major, minor) = (number("major")?, number("minor")?);
    fields.take("access");
    fields.finish()?;
    let guests_own = kind == "c"
        && GUEST_DEVICES
            .iter()
            .any(|&(ma, mi)| major == Some(ma) && (mi.is_none() || mi == minor));
    if allow && !guests_own {
        return Err(SpecError::refused(at, Refusal::DeviceAccess(quote(value))));
    }
    Ok(())
}

fn memory(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at)?;
    if let Some((v, at)) = fields.take("limit") {
        let bytes = signed(v, &at)?;
        // -1: unlimited, so the default size.
        if bytes != -1 {
            set_memory(bytes, at, out)?;
        }
    }
    if let Some((_, at)) = fields.take("swap") {
        out.notes.not_applied(
            at,
            "the guest has no swap, so no swap limit can be exceeded",
        );
    }
    fields.finish_with(|v| Refusal::Resource(quote(v)))
}

/// The VM's RAM from a memory limit of `bytes`, rounded up to whole MiB.
pub(super) fn set_memory(bytes: i64, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mib = u32::try_from(bytes.div_euclid(MIB) + i64::from(bytes % MIB != 0))
        .ok()
        .filter(|_| bytes >= MIB);
    let Some(mib) = mib else {
        return Err(SpecError::refused(at, Refusal::MemoryLimit(bytes)));
    };
    out.config.ram_mib = mib;
    Ok(())
}

/// The VM's vCPUs from a CPU quota per period (default 100 ms), rounded up.
pub(super) fn set_cpu(
    quota: i64,
    period: Option<u64>,
    at: SpecPath,
    out: &mut Out<'_>,
) -> Result<(), SpecError> {
    let period = period.unwrap_or(DEFAULT_CPU_PERIOD);
    let vcpus = u64::try_from(quota)
        .ok()
        .filter(|&q| q > 0 && period > 0)
        .and_then(|q| u8::try_from(q.div_ceil(period)).ok())
        .filter(|&n| n <= MAX_VCPUS);
    let Some(vcpus) = vcpus else {
        return Err(SpecError::refused(at, Refusal::CpuQuota { quota, period }));
    };
    out.config.num_vcpus = vcpus;
    Ok(())
}

fn cpu(value: &Value, at: SpecPath, out: &mut Out<'_>) -> Result<(), SpecError> {
    let mut fields = Fields::of(value, at.clone())?;
    let period = match fields.take("period") {
        Some((v, at)) => unsigned(v, &at)?,
        None => DEFAULT_CPU_PERIOD,
    };
    if let Some((v, at)) = fields.take("quota") {
        let quota = signed(v, &at)?;
        // -1: unlimited, so the default count.
        if quota != -1 {
            set_cpu(quota, Some(period), at, out)?;
        }
    }
    if let Some((_, at)) = fields.take("shares") {
        out.notes.not_applied(
            at,
            "a relative CPU weight among containers; the VMM process is not placed in a cgroup",
        );
    }
    fields.finish_with(|v| Refusal::Resource(quote(v)))
}
