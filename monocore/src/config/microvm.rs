use super::MicroVmConfig;
use crate::error::MonocoreResult;

/// A validated microVM, ready to be started.
///
/// A `MicroVm` can only be made from a config that passed
/// [`MicroVmConfig::validate`], so every value it holds is known to be valid.
/// Make one with [`MicroVm::builder`] (a [`MicroVmBuilder`](super::MicroVmBuilder)
/// with the setters of [`MicroVmConfigBuilder`](super::MicroVmConfigBuilder),
/// whose `build()` validates) or with [`MicroVm::from_config`].
///
/// ```
/// use monocore::vm::MicroVm;
///
/// let dir = tempfile::tempdir()?;
/// let dir = dir.path();
/// let vm = MicroVm::builder()
///     .root_path(dir)
///     .ram_mib(1024)
///     .exec_path("/bin/echo")
///     .args(["Hello, World!"])
///     .build()?;
/// assert_eq!(vm.get_config().args, ["Hello, World!"]);
///
/// // `build()` validates: a root directory that does not exist is an error.
/// let err = MicroVm::builder().root_path("/no/such/rootfs").ram_mib(512).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid microVM configuration: root: root path does not exist: /no/such/rootfs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```
/// use monocore::vm::{MicroVm, MicroVmConfig};
/// let root = tempfile::tempdir()?;
/// let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 512))?;
/// assert_eq!(vm.get_config().ram_mib, 512);
/// assert!(MicroVm::from_config(MicroVmConfig::new(root.path(), 0)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroVm {
    config: MicroVmConfig,
}

impl MicroVm {
    /// Validates `config` (host checks included) and wraps it.
    pub fn from_config(config: MicroVmConfig) -> MonocoreResult<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The validated config.
    pub fn get_config(&self) -> &MicroVmConfig {
        &self.config
    }

    /// Gives the validated config back.
    pub fn into_config(self) -> MicroVmConfig {
        self.config
    }
}
