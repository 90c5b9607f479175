//! What a task is to Kubernetes, from the annotations containerd's CRI
//! plugin puts in its spec: a pod's sandbox (which boots the pod's VM), a
//! container of a pod (which runs in that VM), or neither (a container that
//! `ctr` made: a VM of its own).

use serde_json::Value;

/// The annotation that says which of a pod's tasks this is.
pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// The annotation that names the task's pod sandbox.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// A task, as Kubernetes sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskKind {
    /// Not part of a pod: one VM of its own.
    Standalone,
    /// The pod's sandbox: its VM.
    Sandbox,
    /// A container of the pod whose sandbox has this id.
    Container {
        /// The sandbox's task id.
        sandbox: String,
    },
}

/// Why the annotations do not say what the task is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// A container-type that is neither `sandbox` nor `container`.
    #[error("annotation {CONTAINER_TYPE} is `{0}`: only `sandbox` and `container` are known")]
    UnknownType(String),
    /// A pod container without its sandbox's id.
    #[error("a pod container without the {SANDBOX_ID} annotation: its pod is unknown")]
    NoSandbox,
    /// A sandbox whose sandbox id is not its own.
    #[error("a pod sandbox whose {SANDBOX_ID} annotation (`{sandbox}`) is not its own id (`{id}`)")]
    ForeignSandbox {
        /// The task id.
        id: String,
        /// The annotation's value.
        sandbox: String,
    },
    /// An annotation that is not a string.
    #[error("annotation {0} is not a string")]
    NotAString(&'static str),
}

/// What task `id` is, from its spec's `annotations` (absent: standalone).
pub fn classify(id: &str, annotations: Option<&Value>) -> Result<TaskKind, KindError> {
    let get = |key: &'static str| -> Result<Option<&str>, KindError> {
        match annotations.and_then(|a| a.get(key)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(KindError::NotAString(key)),
        }
    };
    let sandbox = get(SANDBOX_ID)?;
    match get(CONTAINER_TYPE)? {
        None => Ok(TaskKind::Standalone),
        Some("sandbox") => match sandbox {
            Some(s) if s != id => Err(KindError::ForeignSandbox {
                id: id.to_owned(),
                sandbox: s.to_owned(),
            }),
            _ => Ok(TaskKind::Sandbox),
        },
        Some("container") => match sandbox {
            Some(s) if !s.is_empty() => Ok(TaskKind::Container {
                sandbox: s.to_owned(),
            }),
            _ => Err(KindError::NoSandbox),
        },
        Some(other) => Err(KindError::UnknownType(other.to_owned())),
    }
}

/// The id that groups task `id` with the others of its pod (one shim per
/// pod): its sandbox's id for a pod's task, else its own.
pub fn grouping(id: &str, kind: &TaskKind) -> String {
    match kind {
        TaskKind::Standalone | TaskKind::Sandbox => id.to_owned(),
        TaskKind::Container { sandbox } => sandbox.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_cri_annotations_say_what_a_task_is() {
        assert_eq!(classify("a", None), Ok(TaskKind::Standalone));
        assert_eq!(
            classify("a", Some(&json!({"x": "y"}))),
            Ok(TaskKind::Standalone)
        );
        let sandbox = json!({CONTAINER_TYPE: "sandbox", SANDBOX_ID: "pod1"});
        assert_eq!(classify("pod1", Some(&sandbox)), Ok(TaskKind::Sandbox));
        let container = json!({CONTAINER_TYPE: "container", SANDBOX_ID: "pod1"});
        let kind = classify("c1", Some(&container)).unwrap();
        assert_eq!(
            kind,
            TaskKind::Container {
                sandbox: "pod1".into()
            }
        );
        assert_eq!(grouping("c1", &kind), "pod1");
        assert_eq!(grouping("pod1", &TaskKind::Sandbox), "pod1");
    }

    #[test]
    fn unclear_annotations_are_refused_with_the_value() {
        let odd = json!({CONTAINER_TYPE: "podvm"});
        assert_eq!(
            classify("a", Some(&odd)),
            Err(KindError::UnknownType("podvm".into()))
        );
        let orphan = json!({CONTAINER_TYPE: "container"});
        assert_eq!(classify("a", Some(&orphan)), Err(KindError::NoSandbox));
        let empty = json!({CONTAINER_TYPE: "container", SANDBOX_ID: ""});
        assert_eq!(classify("a", Some(&empty)), Err(KindError::NoSandbox));
        let foreign = json!({CONTAINER_TYPE: "sandbox", SANDBOX_ID: "other"});
        assert!(matches!(
            classify("a", Some(&foreign)),
            Err(KindError::ForeignSandbox { .. })
        ));
        let number = json!({CONTAINER_TYPE: 3});
        assert_eq!(
            classify("a", Some(&number)),
            Err(KindError::NotAString(CONTAINER_TYPE))
        );
    }
}
