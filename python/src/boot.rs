//! Making a sandbox's VM: its root (a directory, an image, or a private
//! copy of the busybox root), its config, and its boot.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use monocore::{
    MonocoreResult,
    config::{EnvPair, PathPair},
    image::{ImageRootfs, PullOptions},
    rootfs::RunRootfs,
    vm::{MicroVm, MicroVmConfig, SpawnOptions},
};

use crate::machine::Machine;

/// How long a boot may take before the sandbox gives up on it.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// What every command of a sandbox runs with unless it says otherwise: the
/// image's `Env` and `WorkingDir`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
}

/// Where a sandbox's root comes from.
#[derive(Debug)]
pub(crate) enum RootSource {
    /// A private copy of monocore's busybox root.
    Busybox,
    /// This directory, used in place.
    Dir(PathBuf),
    /// An OCI image, pulled (or taken from the cache) into a private root.
    Image {
        reference: String,
        cache_dir: Option<PathBuf>,
    },
}

/// An image pulled into a private root, with its run defaults.
pub(crate) fn pull(
    reference: &str,
    cache_dir: Option<PathBuf>,
) -> MonocoreResult<(ImageRootfs, Defaults)> {
    let options = PullOptions {
        cache_dir,
        ..PullOptions::default()
    };
    let rootfs = monocore::image::pull(reference, &options)?;
    let config = rootfs.config();
    let defaults = Defaults {
        env: config
            .env
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        cwd: config.working_dir.clone(),
    };
    Ok((rootfs, defaults))
}

/// The shape of a VM booted for a sandbox.
#[derive(Debug)]
pub(crate) struct Shape {
    pub(crate) ram: u32,
    pub(crate) vcpus: u8,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) volumes: Vec<PathPair>,
    pub(crate) network: bool,
    pub(crate) helper: Vec<OsString>,
    pub(crate) time_to_live: Option<Duration>,
}

/// Boots a VM (idle) for a sandbox on `source`. It is not ready yet: see
/// [`Machine::wait_ready`].
pub(crate) fn boot(source: RootSource, shape: Shape) -> MonocoreResult<(Machine, Defaults)> {
    let (root, copy, image, defaults) = match source {
        RootSource::Busybox => {
            let copy = RunRootfs::busybox()?;
            (
                copy.path().to_path_buf(),
                Some(copy),
                None,
                Defaults::default(),
            )
        }
        RootSource::Dir(dir) => (dir, None, None, Defaults::default()),
        RootSource::Image {
            reference,
            cache_dir,
        } => {
            let (rootfs, defaults) = pull(&reference, cache_dir)?;
            (rootfs.path().to_path_buf(), None, Some(rootfs), defaults)
        }
    };
    let mut config = MicroVmConfig::new(root, shape.ram);
    config.num_vcpus = shape.vcpus;
    config.mapped_dirs = shape.volumes;
    config.net = shape.network;
    config.env = shape
        .env
        .into_iter()
        .map(|(k, v)| EnvPair::new(k, v))
        .collect();
    let vm = MicroVm::from_config(config)?;
    let mut options = SpawnOptions::new().idle(true).capture_console(true);
    if let Some((program, args)) = shape.helper.split_first() {
        options = options.helper_path(program).helper_args(args);
    }
    if let Some(ttl) = shape.time_to_live {
        options = options.time_to_live(ttl);
    }
    let handle = vm.spawn_with(&options)?;
    let machine = Machine::Own {
        handle,
        _root: copy,
        _image: image,
    };
    Ok((machine, defaults))
}
