//! A VM's network from the spec's annotations: `io.monocore.net`
//! (`"true"` or `"false"`), `io.monocore.allow` (comma-separated allow-list
//! entries, `HOST:PORT`) and `io.monocore.publish` (comma-separated
//! `HOST:GUEST` port mappings, on the host's 127.0.0.1), as `ctr run
//! --annotation` sets them; the same keys as `monocore run --net --allow
//! -p`. They apply to the VM: a container of its own, or a pod's sandbox
//! (whose annotations containerd copies from the pod's where its runtime
//! handler's `pod_annotations` lets it). A pod's container shares its pod's
//! network, so its own are refused. Any other `io.monocore.` annotation is
//! refused, so that a misspelt one is not silently ignored.

use serde_json::Value;

use super::{
    Out, Role,
    error::{Refusal, SpecError},
    fields::quote,
    path::SpecPath,
};

/// Turns the VM's network on or off.
pub const NET: &str = "io.monocore.net";
/// The egress allow-list.
pub const ALLOW: &str = "io.monocore.allow";
/// Published ports.
pub const PUBLISH: &str = "io.monocore.publish";
const PREFIX: &str = "io.monocore.";

fn refused(at: &SpecPath, name: &str, value: &Value, reason: String) -> SpecError {
    SpecError::refused(
        at.key(name),
        Refusal::NetAnnotation {
            name: name.to_owned(),
            value: quote(value),
            reason,
        },
    )
}

/// The comma-separated items of `value`, trimmed, empty ones left out.
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|i| !i.is_empty())
}

/// Applies the monocore annotations of `annotations` (at `at`).
pub(super) fn apply(
    annotations: &Value,
    at: &SpecPath,
    out: &mut Out<'_>,
) -> Result<(), SpecError> {
    let Some(map) = annotations.as_object() else {
        return Ok(());
    };
    for (name, value) in map.iter().filter(|(name, _)| name.starts_with(PREFIX)) {
        let text = value.as_str().unwrap_or_default();
        if out.role == Role::PodContainer {
            return Err(refused(
                at,
                name,
                value,
                "a pod's containers share its VM's network, which the pod's sandbox sets"
                    .to_owned(),
            ));
        }
        match name.as_str() {
            NET => {
                out.config.net = match text {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(refused(
                            at,
                            name,
                            value,
                            "expected \"true\" or \"false\"".to_owned(),
                        ));
                    }
                };
            }
            ALLOW => {
                for item in items(text) {
                    let entry = item.parse().map_err(|e: monocore::MonocoreError| {
                        refused(at, name, value, e.to_string())
                    })?;
                    out.config.allow.push(entry);
                }
            }
            PUBLISH if out.role == Role::Sandbox => {
                return Err(refused(
                    at,
                    name,
                    value,
                    "a pod's VM publishes no port: its ports are reached at the pod's address, which the VM's network does not have yet".to_owned(),
                ));
            }
            PUBLISH => {
                for item in items(text) {
                    let pair = item.parse().map_err(|e: monocore::MonocoreError| {
                        refused(at, name, value, e.to_string())
                    })?;
                    out.config.port_map.push(pair);
                }
            }
            _ => {
                return Err(SpecError::refused(
                    at.key(name),
                    Refusal::UnknownMonocoreAnnotation(name.clone()),
                ));
            }
        }
    }
    Ok(())
}
