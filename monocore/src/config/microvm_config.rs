use std::{net::Ipv4Addr, path::PathBuf};

use serde::{Deserialize, Serialize};
use typed_path::Utf8UnixPathBuf;

use monocore_macros::TypestateBuilder;

use super::{
    AllowEntry, EnvPair, LinuxRlimit, LogLevel, MicroVm, PathPair, PortPair,
    serde_str::opt_unix_path,
};
use crate::error::MonocoreResult;

/// Everything needed to boot one microVM.
///
/// `root_path` and `ram_mib` are required; every other field has a safe
/// default. Build one with [`MicroVmConfig::builder`] (a
/// [`MicroVmConfigBuilder`] that does not compile until both required fields
/// are set), or with [`MicroVmConfig::new`]. [`MicroVmConfig::validate`]
/// checks a config before it reaches the VMM; [`MicroVm::builder`] builds and
/// validates in one go.
///
/// ```
/// use monocore::vm::{LogLevel, MicroVmConfig};
///
/// let root = tempfile::tempdir()?;
/// let mut config = MicroVmConfig::builder()
///     .root_path(root.path())
///     .ram_mib(512)
///     .log_level(LogLevel::Info)
///     .exec_path("/bin/echo")
///     .args(["hello"])
///     .build();
/// config.validate()?;
///
/// config.ram_mib = 0;
/// assert_eq!(config.validate().unwrap_err().to_string(),
///            "invalid microVM configuration: ram: ram (MiB) is 0: at least 1 is required");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Leaving out a required field is a compile error that names it:
///
/// ```compile_fail
/// # use monocore::vm::MicroVmConfig;
/// // error: missing required field `ram_mib`: call `.ram_mib(..)` before `.build()`
/// let config = MicroVmConfig::builder().root_path("/tmp").build();
/// ```
/// Its serde form (JSON: `monocore run --dry-run`, the VM helper's request)
/// uses the `vm!` and TOML keys (`root`, `ram`, `vcpus`, `exec`, …); the
/// field names (`root_path`, `ram_mib`, …) are read as aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TypestateBuilder)]
#[serde(deny_unknown_fields)]
#[builder(wrapper(
    name = MicroVmBuilder,
    target = MicroVm,
    build_with = MicroVm::from_config,
    output = MonocoreResult<MicroVm>,
))]
pub struct MicroVmConfig {
    /// The VMM's log level. Default: [`LogLevel::Off`].
    #[serde(default)]
    pub log_level: LogLevel,

    /// The host directory that becomes the guest's root filesystem.
    /// Required; it must exist.
    #[builder(required, into)]
    #[serde(rename = "root", alias = "root_path")]
    pub root_path: PathBuf,

    /// The number of virtual CPUs: 1 to
    /// [`MAX_VCPUS`](monocore_rules::limits::MAX_VCPUS) (128 on x86_64,
    /// libkrun's CPUID topology; 255 elsewhere), and before the VM starts no
    /// more than this host's KVM runs in one VM. Default:
    /// [`DEFAULT_NUM_VCPUS`](crate::config::DEFAULT_NUM_VCPUS).
    #[serde(default = "default_num_vcpus")]
    #[builder(default = default_num_vcpus())]
    #[serde(rename = "vcpus", alias = "num_vcpus")]
    pub num_vcpus: u8,

    /// The guest memory in MiB. Required; must be greater than 0.
    #[builder(required)]
    #[serde(rename = "ram", alias = "ram_mib")]
    pub ram_mib: u32,

    /// Host directories shared with the guest over virtio-fs. Guest paths are
    /// absolute and may not overlap.
    #[serde(default)]
    pub mapped_dirs: Vec<PathPair>,

    /// Host ports forwarded to guest ports. Empty means no port is exposed.
    /// It needs networking: with `net`, each host port listens on 127.0.0.1
    /// only; with TSI (`local_only = false`), libkrun's port map.
    #[serde(default)]
    pub port_map: Vec<PortPair>,

    /// Networking through a virtio-net interface whose host end is a passt
    /// process in a network namespace of its own: the guest reaches exactly
    /// what `allow` lists (and the host's loopback only where it lists
    /// `127.0.0.1:PORT`), and the host reaches the guest only through
    /// `port_map`. `false` (the default): no interface but `lo`. It excludes
    /// TSI (`local_only = false`), which would let the guest around the
    /// allow-list ([`RuleError::NetWithTsi`](monocore_rules::RuleError::NetWithTsi)).
    #[serde(default)]
    pub net: bool,

    /// With `net`: the TCP destinations the guest may connect to, each
    /// `HOST:PORT`, `ADDR/PREFIX:PORT` or `NAME:PORT` ([`AllowEntry`]).
    /// Empty: none. Each entry once, at most
    /// [`MAX_ALLOW_ENTRIES`](monocore_rules::limits::MAX_ALLOW_ENTRIES);
    /// entries without `net` are refused
    /// ([`RuleError::AllowNeedsNet`](monocore_rules::RuleError::AllowNeedsNet)),
    /// as they would open nothing.
    #[serde(default)]
    pub allow: Vec<AllowEntry>,

    /// Resource limits for the guest command.
    #[serde(default)]
    pub rlimits: Vec<LinuxRlimit>,

    /// The guest working directory (absolute).
    #[serde(default, with = "opt_unix_path")]
    #[builder(into)]
    #[serde(rename = "workdir", alias = "workdir_path")]
    pub workdir_path: Option<Utf8UnixPathBuf>,

    /// The guest program to run.
    #[serde(default, with = "opt_unix_path")]
    #[builder(into)]
    #[serde(rename = "exec", alias = "exec_path")]
    pub exec_path: Option<Utf8UnixPathBuf>,

    /// Arguments for `exec_path` (not including the program name).
    #[serde(default)]
    #[builder(into)]
    pub args: Vec<String>,

    /// The guest command's environment. Empty means an empty environment:
    /// the host's environment is never copied into the guest.
    #[serde(default)]
    pub env: Vec<EnvPair>,

    /// A host file that receives the guest console's output.
    #[serde(default, with = "opt_unix_path")]
    #[builder(into)]
    #[serde(rename = "console", alias = "console_output")]
    pub console_output: Option<Utf8UnixPathBuf>,

    /// The IPv4 address the guest should have. libkrun 1.19.7 cannot set
    /// it (TSI shares the host's addresses), so any value is refused by
    /// validation ([`RuleError::IpUnsupported`](monocore_rules::RuleError::IpUnsupported)):
    /// the key exists so that a config that asks for an address fails
    /// loudly instead of running without it.
    #[serde(default)]
    #[serde(rename = "ip", alias = "assigned_ip")]
    pub assigned_ip: Option<Ipv4Addr>,

    /// `true` (the default): no TSI; without `net` as well, the guest has no
    /// network beyond its own loopback (stricter than "local only", never
    /// looser), and `port_map` must be empty. `false`: libkrun's TSI, through
    /// which the guest can connect to any address the host can reach and
    /// listen on host ports; it excludes `net`, and needs libkrunfw's kernel
    /// (the compat kernel has no TSI, so such a config cannot run on a
    /// `kvm_pvm` host: `HostCannotRun`).
    #[serde(default = "default_local_only")]
    #[builder(default = default_local_only())]
    pub local_only: bool,
}

fn default_num_vcpus() -> u8 {
    super::DEFAULT_NUM_VCPUS
}

fn default_local_only() -> bool {
    monocore_rules::config::DEFAULT_LOCAL_ONLY
}

impl MicroVmConfig {
    /// A config with the two required fields set and every other field at its
    /// default: the same as
    /// `MicroVmConfig::builder().root_path(root_path).ram_mib(ram_mib).build()`.
    ///
    /// ```
    /// use monocore::vm::MicroVmConfig;
    /// let config = MicroVmConfig::new("/srv/rootfs", 512);
    /// assert_eq!(config, MicroVmConfig::builder().root_path("/srv/rootfs").ram_mib(512).build());
    /// ```
    pub fn new(root_path: impl Into<PathBuf>, ram_mib: u32) -> Self {
        Self::builder()
            .root_path(root_path)
            .ram_mib(ram_mib)
            .build()
    }
}

#[cfg(test)]
mod tests;
