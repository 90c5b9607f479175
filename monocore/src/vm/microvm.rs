use super::MicroVmConfig;
use crate::MonocoreResult;

/// A validated microVM, ready to be started.
///
/// A `MicroVm` can only be made from a config that passed
/// [`MicroVmConfig::validate`], so every value it holds is known to be valid.
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
