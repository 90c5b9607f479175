//! [`ImageVmConfig`]: what `vm! { image: "…", … }` makes.

use super::{ImageRootfs, PullOptions, RunOverrides};
use crate::{config::MicroVmConfig, error::MonocoreResult};

/// A microVM config whose root filesystem is an OCI image: the reference,
/// and the config's explicit settings (its `root_path` is set by
/// [`pull`](Self::pull)). `vm!` with an `image` key makes one, after
/// checking a literal reference at compile time.
///
/// ```no_run
/// use monocore::{image::PullOptions, vm, vm::MicroVm};
///
/// let image_config = vm! { image: "alpine:3.20", ram: 256, exec: "cat", args: ["/etc/os-release"] };
/// let (config, rootfs) = image_config.pull(&PullOptions::default())?;
/// let status = MicroVm::from_config(config)?.spawn()?.wait()?;
/// drop(rootfs); // the VM's private root, kept while the VM runs
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVmConfig {
    /// The image reference (`alpine:3.20`, `localhost:5000/app@sha256:…`).
    pub image: String,
    /// The explicit settings; the image's run defaults fill what they leave
    /// open ([`ImageConfig::apply`](super::ImageConfig::apply)).
    pub config: MicroVmConfig,
}

impl ImageVmConfig {
    /// `image` with the explicit settings in `config`.
    pub fn new(image: impl Into<String>, config: MicroVmConfig) -> Self {
        Self {
            image: image.into(),
            config,
        }
    }

    /// Pulls the image ([`super::pull`]) and returns the config to boot
    /// (`root_path` set to the VM's private root, the image's Entrypoint,
    /// Cmd, Env and WorkingDir under the explicit settings) and that root,
    /// which must outlive the VM.
    pub fn pull(&self, options: &PullOptions) -> MonocoreResult<(MicroVmConfig, ImageRootfs)> {
        let rootfs = super::pull(&self.image, options)?;
        let mut config = self.config.clone();
        config.root_path = rootfs.path().to_path_buf();
        let reference = rootfs.record().reference.clone();
        rootfs
            .config()
            .apply(&mut config, &RunOverrides::default(), &reference)?;
        Ok((config, rootfs))
    }
}
