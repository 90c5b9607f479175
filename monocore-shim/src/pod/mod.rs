//! Kubernetes pods: one microVM per pod sandbox, the pod's containers run
//! inside it through the guest agent.

pub mod exec;
pub mod kind;
pub mod lifecycle;
pub mod member;
pub mod process;
pub mod sandbox;
pub mod share;
