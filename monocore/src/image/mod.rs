//! OCI images: pull from any registry, unpack safely, cache, and boot.
//!
//! ```no_run
//! use monocore::{image::{self, PullOptions, RunOverrides}, vm::{MicroVm, MicroVmConfig}};
//!
//! let rootfs = image::pull("alpine:3.20", &PullOptions::default())?;
//! let mut config = MicroVmConfig::new(rootfs.path(), 256);
//! config.exec_path = Some("cat".into());
//! config.args = vec!["/etc/os-release".into()];
//! // The image's Entrypoint, Cmd, Env and WorkingDir, under what is set.
//! rootfs.config().apply(&mut config, &RunOverrides::default(), "alpine:3.20")?;
//! let status = MicroVm::from_config(config)?.spawn()?.wait()?;
//! # Ok::<(), monocore::MonocoreError>(())
//! ```
//!
//! # References
//!
//! Docker's: `alpine:3.20` is `docker.io/library/alpine:3.20`; a first
//! component with `.` or `:`, or `localhost`, is a registry
//! ([`ImageReference`]). The `vm!` macro checks an `image` literal with
//! the same parser at compile time.
//!
//! # The registry
//!
//! [`oci-client`](https://crates.io/crates/oci-client) speaks the OCI
//! distribution protocol: anonymous, basic and bearer-token auth (tokens
//! fetched with the credentials from [`PullOptions::credentials`] or the
//! docker config file, see [`auth`]). Registries are reached over HTTPS,
//! except loopback ones (`localhost`, `127.0.0.0/8`, `::1`) and those in
//! [`PullOptions::insecure_registries`], which use plain HTTP. An index
//! (manifest list) gives the image for `linux` and this host's
//! architecture, or a [`ImageError::NoMatchingPlatform`] listing what it
//! has. Layers may be uncompressed, gzip or zstd tars. Descriptor `urls`
//! (foreign layers) are never followed.
//!
//! # Integrity
//!
//! Manifests are checked against the digest that named them, blobs against
//! their descriptor's sha256 and size while they stream to disk, and each
//! layer's uncompressed stream against the config's diff ID while it
//! unpacks. A mismatch is [`ImageError::DigestMismatch`], and what failed
//! is removed before the error returns.
//!
//! # The cache
//!
//! In `images/` of monocore's [cache directory](crate::state::cache_dir)
//! (`~/.cache/monocore/images`, or `$MONOCORE_CACHE_DIR/images`), private
//! to the user (mode 0700):
//!
//! ```text
//! blobs/sha256/<hex>   verified blobs: layers, configs, manifests, indexes;
//!                      a layer shared by two images is stored once
//! rootfs/<hex>/        an image's unpacked root, named by its config digest
//!                      (the image ID); read-only in use: VMs get copies
//! refs/<hex>.json      what a reference resolved to (digests, layers,
//!                      sizes, run defaults); <hex> hashes the reference
//! tmp/blob-<hex>       a download in progress or interrupted (resumed with
//!                      an HTTP range request by the next pull)
//! tmp/rootfs-<hex>/    an unpack in progress or interrupted (removed and
//!                      redone by the next pull)
//! locks/*.lock         flock(2) locks: one per blob and per root
//! ```
//!
//! Its size is the compressed layers plus each image's unpacked root:
//! `monocore images` lists both per image. Nothing is removed
//! automatically; [`remove`] forgets a reference and [`prune`] frees what
//! no reference uses.
//!
//! Pulls of the same image at once, from threads or processes, are safe:
//! a blob is downloaded by one of them (a lock per blob), the others wait
//! and find it; a root is unpacked once (a lock per root). A pull
//! interrupted at any point (`kill -9`, a lost connection) leaves only
//! `tmp/` files that the next pull resumes or redoes.
//!
//! # Unpacking
//!
//! Layers are hostile input; see [`unpack`](self::Limits) for what is
//! kept, skipped and bounded. The VM gets a private copy
//! ([`ImageRootfs`]; see its module for why a copy).

mod auth;
mod digest;
mod image_vm;
mod manifest;
mod private_root;
mod progress;
mod pull;
mod registry;
mod run_defaults;
mod store;
mod unpack;

use std::{path::PathBuf, sync::Arc};

pub use crate::error::ImageError;
pub use auth::{Credentials, docker_config_path, from_docker_config};
pub use digest::Digest;
pub use image_vm::ImageVmConfig;
pub use monocore_rules::image_ref::{ImageRefError, ImageRefErrorKind, ImageReference};
pub use private_root::ImageRootfs;
pub use progress::{Progress, PullEvent};
pub use run_defaults::{ImageConfig, RunOverrides};
pub use store::{ImageRecord, LayerRecord};
pub use unpack::{Limits, UnpackStats};

use crate::{error::MonocoreResult, state::RunDir};

/// When a pull asks the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the reference is not in the cache (`monocore run`).
    #[default]
    Missing,
    /// Always resolve the reference again; blobs already cached are not
    /// fetched again (`monocore pull`).
    Always,
    /// Never: a reference not in the cache is [`ImageError::NotCached`].
    Never,
}

/// How to pull.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// The cache directory; default: `images` in
    /// [`cache_dir`](crate::state::cache_dir).
    pub cache_dir: Option<PathBuf>,
    /// Where VMs' private roots are made; default: `runs` in
    /// [`cache_dir`](crate::state::cache_dir).
    pub runs_dir: Option<PathBuf>,
    /// When to ask the registry.
    pub policy: PullPolicy,
    /// Credentials for the image's registry; without them, the docker
    /// config file's, else anonymous.
    pub credentials: Option<Credentials>,
    /// The docker config file to read credentials from; default:
    /// [`docker_config_path`]. `Some("")` reads none.
    pub docker_config: Option<PathBuf>,
    /// Registries (`host:port`, as in the reference) reached over plain
    /// HTTP although they are not loopback ones.
    pub insecure_registries: Vec<String>,
    /// Bounds on what the layers unpack to.
    pub limits: Limits,
    /// Receives progress events.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("cache_dir", &self.cache_dir)
            .field("runs_dir", &self.runs_dir)
            .field("policy", &self.policy)
            .field("credentials", &self.credentials)
            .field("docker_config", &self.docker_config)
            .field("insecure_registries", &self.insecure_registries)
            .field("limits", &self.limits)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl PullOptions {
    /// The image cache directory in use.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(crate::state::images_dir)
    }

    fn runs_dir(&self) -> PathBuf {
        self.runs_dir.clone().unwrap_or_else(crate::state::runs_dir)
    }

    fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, ImageError> {
        if let Some(c) = &self.credentials {
            return Ok(Some(c.clone()));
        }
        let path = match &self.docker_config {
            Some(path) if path.as_os_str().is_empty() => return Ok(None),
            Some(path) => path.clone(),
            None => match docker_config_path() {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        from_docker_config(&path, registry)
    }
}

/// What a pull fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// The reference was in the cache: the registry was not asked.
    pub from_cache: bool,
    /// Blobs downloaded by this pull.
    pub downloaded_blobs: usize,
    /// Bytes downloaded by this pull.
    pub downloaded_bytes: u64,
    /// Blobs found in the cache (or fetched meanwhile by another pull).
    pub cached_blobs: usize,
}

/// A pulled image: in the cache, unpacked, ready to give VMs private
/// roots.
#[derive(Debug)]
pub struct Image {
    record: ImageRecord,
    store: store::Store,
    report: PullReport,
}

impl Image {
    /// What the cache knows of it.
    pub fn record(&self) -> &ImageRecord {
        &self.record
    }

    /// Its run defaults.
    pub fn config(&self) -> &ImageConfig {
        &self.record.config
    }

    /// What this pull fetched.
    pub fn report(&self) -> &PullReport {
        &self.report
    }

    /// A private copy of its root for one VM, in `runs_dir`.
    pub fn rootfs_in(&self, runs_dir: &std::path::Path) -> MonocoreResult<ImageRootfs> {
        let hex = self.record.config_digest.hex();
        let _lock = self.store.lock(&format!("rootfs-{hex}"), false)?;
        let template = self.store.rootfs(&self.record.config_digest);
        if !template.is_dir() {
            return Err(ImageError::NotCached(self.record.reference.clone()).into());
        }
        let run = RunDir::create(runs_dir)?;
        let root = run.paths().guest_root();
        crate::rootfs::copy_tree(&template, &root)?;
        Ok(ImageRootfs::new(
            root,
            self.record.config.clone(),
            self.record.clone(),
            run,
        ))
    }
}

/// Pulls `reference` (into the cache, unless it is there: see
/// [`PullOptions::policy`]) and unpacks it once.
pub fn pull_image(reference: &str, options: &PullOptions) -> MonocoreResult<Image> {
    let reference: ImageReference = reference.parse().map_err(ImageError::from)?;
    Ok(pull::pull_image(&reference, options)?)
}

/// Pulls `reference` and gives a private root for one VM, with the image's
/// run defaults: [`pull_image`], then [`Image::rootfs_in`].
pub fn pull(reference: &str, options: &PullOptions) -> MonocoreResult<ImageRootfs> {
    pull_image(reference, options)?.rootfs_in(&options.runs_dir())
}

/// Every image in the cache, by reference.
pub fn list(options: &PullOptions) -> MonocoreResult<Vec<ImageRecord>> {
    Ok(store::Store::open(&options.cache_dir())?.records()?)
}

/// Forgets `reference`, then frees what no other reference uses ([`prune`]).
/// Returns whether it was cached, and the bytes freed.
pub fn remove(reference: &str, options: &PullOptions) -> MonocoreResult<(bool, u64)> {
    let reference: ImageReference = reference.parse().map_err(ImageError::from)?;
    let store = store::Store::open(&options.cache_dir())?;
    let removed = store.remove_record(&reference.to_string())?;
    Ok((removed, store.prune()?))
}

/// Frees every blob and root no cached reference uses, and what
/// interrupted pulls left; returns the bytes freed. What a running pull or
/// VM copy holds is left alone.
pub fn prune(options: &PullOptions) -> MonocoreResult<u64> {
    Ok(store::Store::open(&options.cache_dir())?.prune()?)
}
