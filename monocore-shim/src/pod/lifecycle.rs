//! The lifecycle a pod container and an exec process share: made, then
//! running as a [`PodProcess`], then ended; `wait` blocks until it has ended,
//! even when asked before `start`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::process::PodProcess;
use crate::{container::Status, exit::Exit};

/// Where it is; `T` is what `start` needs.
#[derive(Debug)]
pub enum Stage<T> {
    /// Made, not started.
    Created(T),
    /// Its process runs (or has just ended).
    Running(Arc<PodProcess>),
    /// Ended, or never started.
    Stopped(Exit),
}

/// A stage, and the signal that it has left `Created`.
#[derive(Debug)]
pub struct Lifecycle<T> {
    stage: Mutex<Stage<T>>,
    started: Condvar,
}

impl<T> Lifecycle<T> {
    /// Made, with what `start` needs.
    pub fn new(ready: T) -> Self {
        Self {
            stage: Mutex::new(Stage::Created(ready)),
            started: Condvar::new(),
        }
    }

    /// The stage, locked.
    pub fn lock(&self) -> MutexGuard<'_, Stage<T>> {
        self.stage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves `locked` (this lifecycle's stage) to `stage`, waking `wait`.
    pub fn set(&self, locked: &mut MutexGuard<'_, Stage<T>>, stage: Stage<T>) {
        **locked = stage;
        self.started.notify_all();
    }

    /// `start`'s first step: what it needs, leaving the stage `Stopped`
    /// until the caller sets it; `None` (the stage untouched) when it was
    /// not `Created`.
    pub fn take_ready(locked: &mut MutexGuard<'_, Stage<T>>) -> Option<T> {
        match std::mem::replace(&mut **locked, Stage::Stopped(Exit::never())) {
            Stage::Created(ready) => Some(ready),
            other => {
                **locked = other;
                None
            }
        }
    }

    /// Where it is.
    pub fn status(&self) -> Status {
        match &*self.lock() {
            Stage::Created(_) => Status::Created,
            Stage::Running(process) => match process.exit() {
                Some(exit) => Status::Stopped(exit),
                None => Status::Running(process.pid()),
            },
            Stage::Stopped(exit) => Status::Stopped(*exit),
        }
    }

    /// Blocks until it has started and ended.
    pub fn wait(&self) -> Exit {
        let mut stage = self.lock();
        loop {
            match &*stage {
                Stage::Stopped(exit) => return *exit,
                Stage::Running(process) => {
                    let process = Arc::clone(process);
                    drop(stage);
                    return process.wait();
                }
                Stage::Created(_) => {
                    stage = self
                        .started
                        .wait(stage)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }
}
