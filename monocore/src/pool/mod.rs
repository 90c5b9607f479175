//! A warm pool: VMs booted ahead of need, so that a sandbox is ready
//! before it is asked for.
//!
//! A [`Pool`] keeps [`size`](PoolConfig::size) VMs booted and idle: each
//! runs no command, its agent waiting on the control channel (an idle
//! guest uses no CPU). [`Pool::claim`] takes one out and gives it to the
//! caller as a [`Sandbox`]: its commands start with no boot, at the cost
//! of an `exec`. The pool boots a replacement in the background at once.
//!
//! A claimed VM is never reused: when the [`Sandbox`] is dropped (or its
//! time to live passes) the VM is killed and its run directory and root
//! removed, so nothing of one caller's run is seen by the next.
//!
//! What a claim may ask for is a [`MicroVmConfig`]: its `env`, `workdir`,
//! `rlimits`, `exec` and `args` become the sandbox's defaults for its
//! commands; its root is the pool's own (nothing to copy: the VM booted on
//! a private copy of it) or any other directory, which is then copied into
//! the VM's share and becomes the root of a container the sandbox's
//! commands run in. `ram` and `vcpus` must fit the pool's shape, and the
//! settings a VM only takes when it boots (shared directories, ports, the
//! network, the console) are refused up front with [`PoolError::Unsupported`]
//! naming the field.
//!
//! ```no_run
//! use monocore::pool::{Pool, PoolConfig};
//! use monocore::vm::GuestCommand;
//!
//! let pool = Pool::new(PoolConfig::new(2, 256))?; // boots 2 VMs in the background
//! let mut sandbox = pool.claim(&pool.default_claim())?; // waits for the first boot only
//! let out = sandbox.run(GuestCommand::new("echo").arg("hello"))?;
//! assert_eq!(out.stdout, b"hello\n");
//! drop(sandbox); // the VM ends; the pool already boots its replacement
//! # Ok::<(), monocore::MonocoreError>(())
//! ```
//!
//! If the pool is empty when a claim comes (all its VMs claimed, the next
//! still booting), the claim boots its own VM ([`WhenEmpty::ColdBoot`], the
//! default) or waits for the pool's next one, up to a deadline
//! ([`WhenEmpty::Wait`]), as [`PoolConfig::when_empty`] chooses.
//!
//! Dropping the pool kills its idle VMs and stops the boots under way
//! (waiting for them to end); claimed sandboxes live on until dropped. If
//! the process is killed, each VM's helper sees its lifeline end and ends
//! the VM, and the next VM started in the same runs directory removes
//! what is left on disk.

mod config;
mod sandbox;
mod warm;

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use config::{DEFAULT_BOOT_TIMEOUT, MAX_POOL_SIZE, PoolConfig, WhenEmpty};
pub use sandbox::Sandbox;

use crate::{
    error::{MonocoreError, MonocoreResult, PoolError},
    rootfs::prepare_template,
    vm::{MicroVm, MicroVmConfig},
};
use warm::WarmVm;

/// A warm pool of booted VMs; see the [module docs](self).
#[derive(Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: PoolConfig,
    /// The root every VM boots on a private copy of.
    template: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<WarmVm>,
    booting: usize,
    boots: Vec<JoinHandle<()>>,
    closed: bool,
    /// Why the last boot failed, while no boot has succeeded since.
    failure: Option<MonocoreError>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    /// Checks `config` (its size, and its VM shape by the VM config rules)
    /// and starts booting its VMs in the background; returns at once.
    pub fn new(config: PoolConfig) -> MonocoreResult<Self> {
        config.check()?;
        let template = match &config.root {
            Some(root) => root.clone(),
            None => prepare_template()?,
        };
        // The shape, checked as any VM config is (RAM, vCPUs, the root).
        MicroVm::from_config(
            MicroVmConfig::builder()
                .root_path(&template)
                .ram_mib(config.ram_mib)
                .num_vcpus(config.vcpus)
                .build(),
        )?;
        let pool = Self {
            inner: Arc::new(Inner {
                config,
                template,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        };
        top_up(&pool.inner);
        Ok(pool)
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// A claim for the pool's own root and shape, with no other setting:
    /// edit it (env, workdir, limits) and pass it to [`claim`](Self::claim).
    pub fn default_claim(&self) -> MicroVmConfig {
        MicroVmConfig::builder()
            .root_path(&self.inner.template)
            .ram_mib(self.inner.config.ram_mib)
            .num_vcpus(self.inner.config.vcpus)
            .build()
    }

    /// How many VMs are booted and idle now.
    pub fn ready(&self) -> usize {
        self.inner.lock().ready.len()
    }

    /// Waits until `count` VMs are ready (at most `timeout`); `false` if
    /// they are not. A boot failure while waiting is returned.
    pub fn wait_ready(&self, count: usize, timeout: Duration) -> MonocoreResult<bool> {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        loop {
            if state.ready.len() >= count.min(self.inner.config.size) {
                return Ok(true);
            }
            if let Some(e) = state.failure.take() {
                return Err(PoolError::Boot(Box::new(e)).into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || state.closed {
                return Ok(false);
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Claims a sandbox for `config` (see the [module docs](self) for what
    /// it may ask): a ready VM if there is one, else what
    /// [`PoolConfig::when_empty`] says. The pool boots a replacement at
    /// once. Errors: `config` invalid by the VM config rules, or not
    /// fitting the pool ([`PoolError`]); no VM in time
    /// ([`PoolError::Empty`]); copying its root or preparing its container.
    pub fn claim(&self, config: &MicroVmConfig) -> MonocoreResult<Sandbox> {
        let config = MicroVm::from_config(config.clone())?.into_config();
        self.inner.config.fits(&config)?;
        let (warm, was_warm) = self.take()?;
        top_up(&self.inner);
        Sandbox::start(warm, was_warm, &config, &self.inner.template)
    }

    /// A ready VM, or what `when_empty` says: `(vm, true)` if it came from
    /// the pool.
    fn take(&self) -> MonocoreResult<(WarmVm, bool)> {
        let started = Instant::now();
        let mut state = self.inner.lock();
        loop {
            if state.closed {
                return Err(PoolError::Closed.into());
            }
            while let Some(mut warm) = state.ready.pop_front() {
                if warm.is_running() {
                    return Ok((warm, true));
                }
            }
            match self.inner.config.when_empty {
                WhenEmpty::ColdBoot => {
                    drop(state);
                    let warm = WarmVm::boot(&self.inner.config, &self.inner.template, &|| true)?;
                    return Ok((warm, false));
                }
                WhenEmpty::Wait(limit) => {
                    if state.booting == 0 {
                        // Nothing on the way: the last boot failed. Say
                        // why; the next claim tries again.
                        let failure = state.failure.take();
                        drop(state);
                        top_up(&self.inner);
                        if let Some(e) = failure {
                            return Err(PoolError::Boot(Box::new(e)).into());
                        }
                        state = self.inner.lock();
                        continue;
                    }
                    let left = limit.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(PoolError::Empty { waited: limit }.into());
                    }
                    state = self
                        .inner
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// Starts a boot for each VM the pool lacks (ready and booting together
/// below its size).
fn top_up(inner: &Arc<Inner>) {
    let mut state = inner.lock();
    state.boots.retain(|boot| !boot.is_finished());
    while !state.closed && state.ready.len() + state.booting < inner.config.size {
        let pool = Arc::clone(inner);
        let spawned = std::thread::Builder::new()
            .name("monocore-pool-boot".into())
            .spawn(move || boot_one(&pool));
        match spawned {
            Ok(boot) => {
                state.booting += 1;
                state.boots.push(boot);
            }
            Err(e) => {
                state.failure = Some(e.into());
                break;
            }
        }
    }
}

/// Boots one VM and adds it to the pool (or, if the pool closed
/// meanwhile, ends it).
fn boot_one(inner: &Arc<Inner>) {
    let closed = || inner.lock().closed;
    let booted = WarmVm::boot(&inner.config, &inner.template, &|| !closed());
    let mut state = inner.lock();
    state.booting = state.booting.saturating_sub(1);
    match booted {
        Ok(warm) if !state.closed => {
            state.failure = None;
            state.ready.push_back(warm);
        }
        // Closed: dropped below, after the lock (killing it takes a moment).
        Ok(warm) => {
            drop(state);
            drop(warm);
            inner.changed.notify_all();
            return;
        }
        Err(e) if !state.closed => state.failure = Some(e),
        Err(_) => {}
    }
    drop(state);
    inner.changed.notify_all();
}

impl Drop for Pool {
    fn drop(&mut self) {
        let (ready, boots) = {
            let mut state = self.inner.lock();
            state.closed = true;
            (
                std::mem::take(&mut state.ready),
                std::mem::take(&mut state.boots),
            )
        };
        self.inner.changed.notify_all();
        drop(ready);
        for boot in boots {
            let _ = boot.join();
        }
    }
}
