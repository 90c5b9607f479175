//! A pod VM's size from the annotations the CRI plugin puts on its sandbox:
//! the pod's memory (`io.kubernetes.cri.sandbox-memory`, the sum of its
//! containers' limits and its overhead) and CPU quota (`…-cpu-quota` per
//! `…-cpu-period`). The sandbox's own `linux.resources` are the pause
//! container's, not the pod's.

use serde_json::Value;

use super::{
    Out,
    error::{Refusal, SpecError},
    path::SpecPath,
};

/// The pod's memory, in bytes.
pub const SANDBOX_MEMORY: &str = "io.kubernetes.cri.sandbox-memory";
/// The pod's CPU quota, in µs per period.
pub const SANDBOX_CPU_QUOTA: &str = "io.kubernetes.cri.sandbox-cpu-quota";
/// The pod's CPU period, in µs.
pub const SANDBOX_CPU_PERIOD: &str = "io.kubernetes.cri.sandbox-cpu-period";

/// Annotation `key` of `annotations` as a number (absent: `None`).
fn number(annotations: &Value, at: &SpecPath, key: &str) -> Result<Option<i64>, SpecError> {
    let Some(value) = annotations.get(key) else {
        return Ok(None);
    };
    let text = value.as_str().unwrap_or_default();
    text.parse().map(Some).map_err(|_| {
        SpecError::refused(
            at.key(key),
            Refusal::Annotation {
                name: key.to_owned(),
                value: super::fields::quote(value),
            },
        )
    })
}

/// Sizes the pod's VM from `annotations` (at `at`): an absent, zero or
/// unlimited (-1) value leaves the size the spec gave.
pub(super) fn apply(
    annotations: &Value,
    at: &SpecPath,
    out: &mut Out<'_>,
) -> Result<(), SpecError> {
    if let Some(bytes) = number(annotations, at, SANDBOX_MEMORY)?
        && bytes > 0
    {
        super::linux::set_memory(bytes, at.key(SANDBOX_MEMORY), out)?;
    }
    if let Some(quota) = number(annotations, at, SANDBOX_CPU_QUOTA)?
        && quota > 0
    {
        let period = number(annotations, at, SANDBOX_CPU_PERIOD)?.unwrap_or(0);
        let period = u64::try_from(period).ok().filter(|&p| p > 0);
        super::linux::set_cpu(quota, period, at.key(SANDBOX_CPU_QUOTA), out)?;
    }
    Ok(())
}
