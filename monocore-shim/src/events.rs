//! Task events for containerd (`/tasks/create`, `start`, `exit`, `delete`).
//!
//! Each event is sent on a new connection to containerd's TTRPC socket, so
//! a containerd that restarted (a new listener on the same path) still gets
//! the events that follow; one that is down misses them and learns the
//! task's state from `state` and `wait` when it re-attaches.

use std::time::{Duration, SystemTime};

use containerd_shim::{
    protos::{
        events::task::{TaskCreate, TaskDelete, TaskExit, TaskStart},
        protobuf::{MessageDyn, well_known_types::timestamp::Timestamp},
        topics,
        ttrpc::context,
    },
    publisher::RemotePublisher,
    warn,
};

use crate::exit::Exit;

/// How long one event may take to deliver.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where events go.
#[derive(Debug, Clone)]
pub struct Events {
    address: String,
    namespace: String,
}

impl Events {
    /// Events for `namespace`, sent to containerd's TTRPC `address`.
    pub fn new(address: String, namespace: String) -> Self {
        Self { address, namespace }
    }

    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let timeout = i64::try_from(PUBLISH_TIMEOUT.as_nanos()).unwrap_or(i64::MAX);
        let sent = RemotePublisher::new(&self.address).and_then(|publisher| {
            publisher.publish(
                context::with_timeout(timeout),
                topic,
                &self.namespace,
                event,
            )
        });
        if let Err(e) = sent {
            warn!("could not publish {topic} to {}: {e}", self.address);
        }
    }

    /// The task was created.
    pub fn created(&self, id: &str, bundle: &str) {
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: id.to_owned(),
                bundle: bundle.to_owned(),
                ..Default::default()
            }),
        );
    }

    /// The task's VM started as process `pid`.
    pub fn started(&self, id: &str, pid: u32) {
        self.publish(
            topics::TASK_START_EVENT_TOPIC,
            Box::new(TaskStart {
                container_id: id.to_owned(),
                pid,
                ..Default::default()
            }),
        );
    }

    /// The task's VM ended.
    pub fn exited(&self, id: &str, exit: Exit) {
        self.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            Box::new(TaskExit {
                container_id: id.to_owned(),
                id: id.to_owned(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)).into(),
                ..Default::default()
            }),
        );
    }

    /// The task was deleted.
    /// `/tasks/exit` for exec process `exec_id` of task `id`.
    pub fn exec_exited(&self, id: &str, exec_id: &str, exit: Exit) {
        self.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            Box::new(TaskExit {
                container_id: id.to_owned(),
                id: exec_id.to_owned(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)).into(),
                ..Default::default()
            }),
        );
    }

    pub fn deleted(&self, id: &str, exit: Exit) {
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: id.to_owned(),
                id: id.to_owned(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: Some(timestamp(exit.at)).into(),
                ..Default::default()
            }),
        );
    }
}

/// A protobuf timestamp.
pub fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp::from(at)
}
