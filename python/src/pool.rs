//! [`Pool`]: a monocore warm pool ([`monocore::pool::Pool`]) for
//! `monocore.Pool`, whose claims are [`Vm`]s.

use std::{
    ffi::OsString,
    path::PathBuf,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use monocore::{
    MonocoreResult,
    config::EnvPair,
    pool::{self, PoolConfig, WhenEmpty},
    typed_path::Utf8UnixPathBuf,
};
use pyo3::prelude::*;

use crate::{
    boot::{Defaults, pull},
    errors::{self, Partial},
    machine::Machine,
    sandbox::{Vm, lock, seconds},
};

/// How often a claim's wait checks for Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

/// A warm pool of booted, idle VMs of one shape.
#[pyclass(module = "monocore._monocore", frozen)]
pub(crate) struct Pool {
    /// `None` once closed. Shared with the claims under way, which keep
    /// the pool until they end.
    pool: Mutex<Option<Arc<pool::Pool>>>,
}

/// What a claim asks for.
struct Claim {
    image: Option<(String, Option<PathBuf>)>,
    root: Option<PathBuf>,
    ram: Option<u32>,
    vcpus: Option<u8>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    time_to_live: Option<Duration>,
}

impl Pool {
    fn get(&self, py: Python<'_>) -> PyResult<Arc<pool::Pool>> {
        lock(&self.pool).clone().ok_or_else(|| {
            errors::to_py(
                py,
                monocore::error::PoolError::Closed.into(),
                Partial::default(),
            )
        })
    }
}

/// Claims a sandbox: pulls its image, if any, and gives the claim its
/// root, shape, env and workdir (an image's `Env` and `WorkingDir` under
/// the claim's own).
fn claim(pool: &pool::Pool, claim: Claim) -> MonocoreResult<Machine> {
    let mut config = pool.default_claim();
    let mut image_env = Vec::new();
    let mut image_root = None;
    if let Some((reference, cache_dir)) = claim.image {
        let (rootfs, Defaults { env, cwd }) = pull(&reference, cache_dir)?;
        config.root_path = rootfs.path().to_path_buf();
        config.workdir_path = cwd.map(Utf8UnixPathBuf::from);
        image_env = env;
        image_root = Some(rootfs);
    }
    if let Some(root) = claim.root {
        config.root_path = root;
    }
    if let Some(ram) = claim.ram {
        config.ram_mib = ram;
    }
    if let Some(vcpus) = claim.vcpus {
        config.num_vcpus = vcpus;
    }
    if let Some(cwd) = claim.cwd {
        config.workdir_path = Some(Utf8UnixPathBuf::from(cwd));
    }
    // The claim's own env wins over the image's, name by name.
    image_env.retain(|(name, _)| claim.env.iter().all(|(own, _)| own != name));
    config.env = image_env
        .into_iter()
        .chain(claim.env)
        .map(|(k, v)| EnvPair::new(k, v))
        .collect();
    let mut sandbox = pool.claim(&config)?;
    // The claim copied the image's root into the VM: this copy can go.
    drop(image_root);
    if let Some(ttl) = claim.time_to_live {
        sandbox.set_time_to_live(ttl)?;
    }
    Ok(Machine::Pooled(sandbox))
}

#[pymethods]
impl Pool {
    /// Starts booting `size` VMs of `ram` MiB and `vcpus` vCPUs on private
    /// copies of `root` (default: the busybox root) in the background, and
    /// returns at once. `wait=None` makes a claim on an empty pool boot
    /// its own VM; `wait=seconds` makes it wait that long for the pool's
    /// next one instead.
    #[new]
    #[pyo3(signature = (*, size, ram, vcpus, root, wait, helper))]
    fn new(
        py: Python<'_>,
        size: usize,
        ram: u32,
        vcpus: u8,
        root: Option<PathBuf>,
        wait: Option<f64>,
        helper: Vec<OsString>,
    ) -> PyResult<Self> {
        let mut config = PoolConfig::new(size, ram).vcpus(vcpus);
        if let Some(root) = root {
            config = config.root(root);
        }
        if let Some(wait) = wait {
            config = config.when_empty(WhenEmpty::Wait(seconds("wait", wait)?));
        }
        if let Some((program, args)) = helper.split_first() {
            config = config.helper(program, args);
        }
        let made = py.detach(|| pool::Pool::new(config));
        let pool = made.map_err(|error| errors::to_py(py, error, Partial::default()))?;
        Ok(Pool {
            pool: Mutex::new(Some(Arc::new(pool))),
        })
    }

    /// How many VMs are booted and idle now.
    #[getter]
    fn ready(&self, py: Python<'_>) -> PyResult<usize> {
        let pool = self.get(py)?;
        Ok(py.detach(|| pool.ready()))
    }

    /// Waits until `count` VMs are ready, at most `timeout` seconds;
    /// whether they are. A boot that failed meanwhile is raised.
    fn wait_ready(&self, py: Python<'_>, count: usize, timeout: f64) -> PyResult<bool> {
        let pool = self.get(py)?;
        let timeout = seconds("timeout", timeout)?;
        let waited = py.detach(|| pool.wait_ready(count, timeout));
        waited.map_err(|error| errors::to_py(py, error, Partial::default()))
    }

    /// Claims a sandbox (see `monocore.Pool.claim`). The wait hears
    /// Ctrl-C: the claim then goes on in the background, and its VM is
    /// killed when it is made.
    #[pyo3(signature = (*, root=None, image=None, image_cache=None, ram=None, vcpus=None, env=Vec::new(), cwd=None, time_to_live=None))]
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        py: Python<'_>,
        root: Option<PathBuf>,
        image: Option<String>,
        image_cache: Option<PathBuf>,
        ram: Option<u32>,
        vcpus: Option<u8>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        time_to_live: Option<f64>,
    ) -> PyResult<Vm> {
        if root.is_some() && image.is_some() {
            return Err(errors::config_error(
                py,
                "image",
                "give a root or an image, not both",
            ));
        }
        let asked = Claim {
            image: image.map(|reference| (reference, image_cache)),
            root,
            ram,
            vcpus,
            env,
            cwd,
            time_to_live: time_to_live
                .map(|ttl| seconds("time_to_live", ttl))
                .transpose()?,
        };
        let pool = self.get(py)?;
        let (tx, rx) = mpsc::channel();
        // A thread of its own, so that the wait can end at Ctrl-C: a
        // sandbox made after nobody waits is dropped, which kills it.
        std::thread::spawn(move || {
            let _ = tx.send(claim(&pool, asked));
        });
        let claimed = py.detach(move || {
            loop {
                match rx.recv_timeout(POLL) {
                    Ok(claimed) => return Ok(claimed),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        Python::attach(|py| py.check_signals())?;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(pyo3::exceptions::PyRuntimeError::new_err(
                            "monocore: the claim's thread panicked",
                        ));
                    }
                }
            }
        })?;
        let machine = claimed.map_err(|error| errors::to_py(py, error, Partial::default()))?;
        Vm::adopt(machine, Defaults::default())
    }

    /// Kills the idle VMs and stops the boots under way. Sandboxes claimed
    /// already are not touched. Closing again does nothing.
    fn close(&self, py: Python<'_>) {
        let pool = lock(&self.pool).take();
        py.detach(move || drop(pool));
    }
}
