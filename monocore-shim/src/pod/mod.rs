//! Kubernetes pods: one microVM per pod sandbox, the pod's containers run
//! inside it through the guest agent.

pub mod kind;
pub mod share;
