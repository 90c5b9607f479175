//! [`PoolConfig`]: the shape of a pool's VMs, and what a claim may ask of
//! one.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use monocore_rules::Field;

use crate::{
    config::{LogLevel, MicroVmConfig},
    error::PoolError,
    host::kernel::KernelChoice,
};

/// The most VMs one pool keeps booted.
pub const MAX_POOL_SIZE: usize = 64;

/// How long a pool VM may take to boot before it counts as failed.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a claim does when no VM of the pool is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenEmpty {
    /// Boot a VM for this claim at once (what a VM without a pool costs).
    ColdBoot,
    /// Wait for the pool's next VM, at most this long, then fail with
    /// [`PoolError::Empty`].
    Wait(Duration),
}

/// A pool's settings: how many VMs it keeps booted, the shape each has,
/// and the root each boots on.
///
/// ```
/// use std::time::Duration;
/// use monocore::pool::{PoolConfig, WhenEmpty};
/// let config = PoolConfig::new(2, 512)
///     .vcpus(2)
///     .when_empty(WhenEmpty::Wait(Duration::from_secs(30)));
/// assert_eq!(config.size(), 2);
/// assert!(PoolConfig::new(0, 512).check().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub(crate) size: usize,
    pub(crate) ram_mib: u32,
    pub(crate) vcpus: u8,
    pub(crate) root: Option<PathBuf>,
    pub(crate) when_empty: WhenEmpty,
    pub(crate) boot_timeout: Duration,
    pub(crate) kernel: KernelChoice,
    pub(crate) runs_dir: Option<PathBuf>,
    pub(crate) helper: Option<(PathBuf, Vec<OsString>)>,
}

impl PoolConfig {
    /// `size` VMs of `ram_mib` MiB and one vCPU each, booted on private
    /// copies of the default busybox root; an empty pool makes a claim
    /// boot its own VM ([`WhenEmpty::ColdBoot`]).
    pub fn new(size: usize, ram_mib: u32) -> Self {
        Self {
            size,
            ram_mib,
            vcpus: 1,
            root: None,
            when_empty: WhenEmpty::ColdBoot,
            boot_timeout: DEFAULT_BOOT_TIMEOUT,
            kernel: KernelChoice::default(),
            runs_dir: None,
            helper: None,
        }
    }

    /// vCPUs per VM (the most a claim may ask for).
    pub fn vcpus(mut self, vcpus: u8) -> Self {
        self.vcpus = vcpus;
        self
    }

    /// The template each VM boots on a private copy of (a directory tree,
    /// such as an image's unpacked root); claims that ask for this root
    /// run in it with no copy at claim time. Default: the busybox tree of
    /// [`crate::rootfs`].
    pub fn root(mut self, template: impl Into<PathBuf>) -> Self {
        self.root = Some(template.into());
        self
    }

    /// What a claim does when no VM is ready.
    pub fn when_empty(mut self, when: WhenEmpty) -> Self {
        self.when_empty = when;
        self
    }

    /// How long one VM may take to boot.
    pub fn boot_timeout(mut self, timeout: Duration) -> Self {
        self.boot_timeout = timeout;
        self
    }

    /// The guest kernel the VMs boot.
    pub fn kernel(mut self, kernel: KernelChoice) -> Self {
        self.kernel = kernel;
        self
    }

    /// Where the VMs' run directories and root copies go (see
    /// [`SpawnOptions::runs_dir`](crate::vm::SpawnOptions::runs_dir)).
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = Some(dir.into());
        self
    }

    /// Boot the VMs in this separate helper program, with these arguments,
    /// instead of in this program (see
    /// [`SpawnOptions::helper_path`](crate::vm::SpawnOptions::helper_path)):
    /// for a host that is not its own helper, such as the Python package.
    pub fn helper<I, S>(mut self, path: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.helper = Some((path.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// How many VMs the pool keeps booted.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Each VM's RAM, in MiB.
    pub fn ram_mib(&self) -> u32 {
        self.ram_mib
    }

    /// Each VM's vCPUs.
    pub fn num_vcpus(&self) -> u8 {
        self.vcpus
    }

    /// The pool's template root, if not the default.
    pub fn root_path(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Checks the size; the VM shape is checked with the VM config rules
    /// when the pool is made ([`Pool::new`](super::Pool::new)).
    pub fn check(&self) -> Result<(), PoolError> {
        if self.size == 0 || self.size > MAX_POOL_SIZE {
            return Err(PoolError::Size {
                size: self.size,
                max: MAX_POOL_SIZE,
            });
        }
        Ok(())
    }

    /// Checks that a booted VM of this pool can take `config`: no more RAM
    /// or vCPUs than the pool's shape, and none of the settings a VM only
    /// takes when it boots.
    pub fn fits(&self, config: &MicroVmConfig) -> Result<(), PoolError> {
        if config.ram_mib > self.ram_mib {
            return Err(PoolError::RamTooLarge {
                asked: config.ram_mib,
                pool: self.ram_mib,
            });
        }
        if config.num_vcpus > self.vcpus {
            return Err(PoolError::TooManyVcpus {
                asked: config.num_vcpus,
                pool: self.vcpus,
            });
        }
        let boot_only = [
            (
                !config.mapped_dirs.is_empty(),
                Field::MappedDirs,
                "a VM's shared directories are attached when it boots",
            ),
            (
                !config.port_map.is_empty(),
                Field::PortMap,
                "ports are published when the VM boots",
            ),
            (
                config.net,
                Field::Net,
                "the network device is attached when the VM boots",
            ),
            (
                !config.allow.is_empty(),
                Field::Allow,
                "the egress policy is set up with the network, when the VM boots",
            ),
            (
                !config.local_only,
                Field::LocalOnly,
                "TSI is set up when the VM boots",
            ),
            (
                config.assigned_ip.is_some(),
                Field::Ip,
                "the network is set up when the VM boots",
            ),
            (
                config.console_output.is_some(),
                Field::Console,
                "the guest console is set when the VM boots; a command's output comes back to the caller",
            ),
            (
                config.log_level != LogLevel::Off,
                Field::LogLevel,
                "the VMM's log level is set when the VM boots",
            ),
        ];
        match boot_only.into_iter().find(|(asked, ..)| *asked) {
            Some((_, field, reason)) => Err(PoolError::Unsupported { field, reason }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn size_zero_and_too_large_are_refused() {
        for size in [0, MAX_POOL_SIZE + 1] {
            let Err(PoolError::Size { size: got, max }) = PoolConfig::new(size, 256).check() else {
                panic!("size {size} passed")
            };
            assert_eq!((got, max), (size, MAX_POOL_SIZE));
        }
        assert!(PoolConfig::new(1, 256).check().is_ok());
        assert!(PoolConfig::new(MAX_POOL_SIZE, 256).check().is_ok());
    }

    #[test]
    fn a_claim_larger_than_the_pool_shape_is_refused_with_both_sizes() {
        let pool = PoolConfig::new(1, 256).vcpus(2);
        let mut config = MicroVmConfig::new("/r", 512);
        let err = pool.fits(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the sandbox asks for 512 MiB of RAM; this pool's VMs have 256 MiB"
        );
        config.ram_mib = 256;
        config.num_vcpus = 3;
        assert!(matches!(
            pool.fits(&config),
            Err(PoolError::TooManyVcpus { asked: 3, pool: 2 })
        ));
        config.num_vcpus = 2;
        assert!(pool.fits(&config).is_ok());
    }

    #[test]
    fn boot_time_settings_are_refused_by_field() {
        let pool = PoolConfig::new(1, 256);
        let mut config = MicroVmConfig::new("/r", 256);
        config.net = true;
        let Err(PoolError::Unsupported { field, .. }) = pool.fits(&config) else {
            panic!("net passed")
        };
        assert_eq!(field, Field::Net);
        config.net = false;
        config.local_only = false;
        let err = pool.fits(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`local_only` cannot be given to a pooled VM: TSI is set up when the VM boots"
        );
    }
}
