//! Applying a validated config to a libkrun context.
//!
//! Order matters: first every value is turned into what libkrun reads
//! (C strings, port and rlimit strings), so a NUL byte, a non-UTF-8 host path
//! or an unsupported setting is a typed error before any FFI call; then the
//! rootfs is prepared ([`fstab`](super::fstab)); only then is a context
//! created and configured.
//!
//! # Networking with upstream libkrun 1.19.7
//!
//! libkrun gives the guest network access through TSI (transparent socket
//! impersonation over vsock): the guest's `AF_INET` sockets become sockets
//! of the VMM process on the host. In 1.19.7:
//!
//! - outbound connections reach every address the host can reach; there is
//!   no way to restrict them to the local host;
//! - the port map only *renames* ports: a guest that listens on a port that
//!   is not in the map gets that same port bound on the host (an empty map
//!   does not stop it);
//! - the guest's IP address cannot be chosen (TSI shares the host's).
//!
//! So monocore maps the config like this, never ignoring a setting:
//!
//! | config | what monocore does |
//! |---|---|
//! | `local_only = true` (default), empty `port_map` | no vsock device at all (`krun_disable_implicit_vsock`): the guest has no network beyond its own loopback. Stricter than "local only", never looser. |
//! | `local_only = true`, non-empty `port_map` | [`MonocoreError::Unsupported`]: exposing ports needs TSI, which also opens outbound access to everything. |
//! | `local_only = false` | TSI for inet sockets (`krun_add_vsock(HIJACK_INET)`) with the port map passed explicitly (an empty array, never NULL). The guest can connect anywhere the host can, and listen on host ports. |
//! | `assigned_ip = Some(_)` | [`MonocoreError::Unsupported`]. |

use std::{
    convert::Infallible,
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
    path::Path,
};

use super::{
    LogLevel, MicroVm, MicroVmConfig,
    fstab::{self, Mount},
    krun::{self, CStrArray, KrunContext},
};
use crate::{MonocoreError, MonocoreResult};

/// A libkrun context with a config fully applied, ready to enter.
///
/// Made by [`MicroVm::prepare`]. Dropping it frees the context without
/// starting anything.
#[derive(Debug)]
pub struct PreparedVm {
    ctx: KrunContext,
    log_level: LogLevel,
}

impl PreparedVm {
    /// Enters the VM in this process with `krun_start_enter`.
    ///
    /// **Returns only on error.** On success libkrun runs the guest and,
    /// when the guest exits, ends this whole process (`_exit`) with the
    /// guest's exit code: no destructor runs and nothing after this call
    /// executes. Use [`MicroVm::spawn`] to run a VM and keep your process.
    ///
    /// The VMM logs to this process's stderr at the config's log level.
    pub fn enter(self) -> MonocoreResult<Infallible> {
        // SAFETY: fd 2 (stderr) is not taken over by libkrun (it maps 2 to
        // its own stderr target).
        unsafe { krun::init_log(2, self.log_level as u32, false) }?;
        Err(self.ctx.start_enter())
    }

    /// Like [`enter`](Self::enter), with the VMM log going to `log_fd` and
    /// `RUST_LOG` refining the filter. Used by the `monocore-vmm` helper.
    ///
    /// # Safety
    /// `log_fd` must be an open descriptor that nothing else owns or closes:
    /// libkrun takes ownership of it.
    pub(crate) unsafe fn enter_with_log(self, log_fd: i32) -> MonocoreResult<Infallible> {
        // SAFETY: ownership of `log_fd` is passed on, per this fn's contract.
        unsafe { krun::init_log(log_fd, self.log_level as u32, true) }?;
        Err(self.ctx.start_enter())
    }

    /// The libkrun context id (for diagnostics).
    pub fn context_id(&self) -> u32 {
        self.ctx.id()
    }
}

impl MicroVm {
    /// Applies the validated config to a new libkrun context: writes the
    /// mount points and the monocore block of `/etc/fstab` into the rootfs,
    /// then makes every `krun_*` configuration call. Nothing is started.
    ///
    /// ```
    /// use monocore::vm::{MicroVm, MicroVmConfig};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.exec_path = Some("/bin/true".into());
    /// let prepared = MicroVm::from_config(config)?.prepare()?;
    /// drop(prepared); // frees the context; nothing ran
    ///
    /// // A setting libkrun cannot honour is refused, not ignored.
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.assigned_ip = Some("10.0.0.2".parse()?);
    /// let err = MicroVm::from_config(config)?.prepare().unwrap_err();
    /// assert!(err.to_string().starts_with("unsupported setting assigned_ip = 10.0.0.2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare(&self) -> MonocoreResult<PreparedVm> {
        // Building the plan is the support check (see `check_support`).
        let plan = Plan::new(self.get_config())?;
        fstab::prepare_rootfs(&self.get_config().root_path, &plan.mounts, None)?;
        plan.apply()
    }

    /// Checks, without any FFI call or file write, that libkrun 1.19.7 can
    /// honour this config: every string converts to a C string, no `"` in
    /// args or env, host paths are UTF-8, and the network settings are
    /// supported (see the module docs: a `port_map` needs
    /// `local_only = false`; `assigned_ip` is not supported). [`prepare`]
    /// and [`spawn`](Self::spawn) make the same check first, so an unsupported setting
    /// fails before any process starts.
    ///
    /// [`prepare`]: Self::prepare
    ///
    /// ```
    /// use monocore::vm::{MicroVm, MicroVmConfig};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.port_map = vec!["8080:80".parse()?];
    /// let vm = MicroVm::from_config(config.clone())?;
    /// assert!(vm.check_support().unwrap_err().to_string().contains("local_only = false"));
    /// config.local_only = false;
    /// assert!(MicroVm::from_config(config)?.check_support().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_support(&self) -> MonocoreResult<()> {
        Plan::new(self.get_config()).map(drop)
    }

    /// Runs the VM in this process: [`prepare`](Self::prepare), then
    /// [`PreparedVm::enter`].
    ///
    /// **Returns only on error.** On success the VMM ends this whole process
    /// with the guest's exit code when the guest exits (`krun_start_enter`
    /// never returns). To keep your process, use [`MicroVm::spawn`].
    pub fn start(self) -> MonocoreResult<Infallible> {
        self.prepare()?.enter()
    }
}

/// Why a VM can have only a few mapped directories (x86_64): every
/// virtio-fs share is a virtio-mmio device with its own interrupt line.
#[cfg(target_arch = "x86_64")]
const MAPPED_DIRS_REASON: &str = "libkrun 1.19.7 on x86_64 gives virtio devices the 11 interrupt lines 5 to 15; \
     the balloon, entropy and console devices and the root filesystem take 4 and networking \
     (local_only = false) 1 more, so at most 7 directories can be mapped (6 with networking); \
     beyond that krun_start_enter fails with EINVAL";
#[cfg(not(target_arch = "x86_64"))]
const MAPPED_DIRS_REASON: &str =
    "libkrun 1.19.7 has no interrupt line left for more virtio-fs devices";

/// The most mapped directories libkrun 1.19.7 can attach on this
/// architecture (measured on x86_64: 8 with local_only fails in
/// `krun_start_enter` with EINVAL, 7 boots; with networking, 7 fails).
fn max_mapped_dirs(local_only: bool) -> usize {
    // Interrupt lines for virtio-mmio devices: x86_64 IRQ 5..=15; aarch64
    // 32..=159 (krun-arch layout.rs).
    let lines: usize = if cfg!(target_arch = "x86_64") {
        11
    } else {
        128
    };
    // balloon + rng + console + the root filesystem's virtio-fs device.
    let fixed = 4 + usize::from(!local_only);
    lines.saturating_sub(fixed)
}

/// Everything libkrun will read, converted and checked before any FFI call.
pub(crate) struct Plan {
    num_vcpus: u8,
    ram_mib: u32,
    log_level: LogLevel,
    root: CString,
    pub(crate) mounts: Vec<Mount>,
    virtiofs: Vec<(CString, CString)>,
    network: Network,
    rlimits: Option<CStrArray>,
    workdir: Option<CString>,
    exec: Option<(CString, CStrArray)>,
    env: CStrArray,
    console_output: Option<CString>,
}

enum Network {
    /// No vsock device: no network.
    None,
    /// TSI for inet sockets, with this port map.
    Tsi(CStrArray),
}

/// A C string for libkrun, or a typed error naming the field.
fn c_string(field: &'static str, value: &str) -> MonocoreResult<CString> {
    CString::new(value).map_err(|_| MonocoreError::NulInString {
        field,
        value: value.to_owned(),
    })
}

/// A C string that libkrun puts in double quotes on the guest kernel
/// command line (args and env): a `"` would end the quoting early.
fn quoted_c_string(field: &'static str, value: &str) -> MonocoreResult<CString> {
    if value.contains('"') {
        return Err(MonocoreError::QuoteInString {
            field,
            value: value.to_owned(),
        });
    }
    c_string(field, value)
}

/// A C string that libkrun puts on the guest kernel command line *without*
/// quotes (`KRUN_INIT=<exec_path>`, `KRUN_WORKDIR=<workdir>`): a space would
/// end the value and start another kernel parameter (`init=…`, `KRUN_…=…`,
/// or `--`), so the guest would run something other than what the config
/// says.
fn unquoted_c_string(field: &'static str, value: &str) -> MonocoreResult<CString> {
    if value.contains(' ') {
        return Err(MonocoreError::Unsupported {
            setting: field,
            value: value.to_owned(),
            reason: "libkrun 1.19.7 passes the exec path and the workdir unquoted on the guest \
                     kernel command line, where a space would split them into further kernel \
                     parameters; use a path without spaces",
        });
    }
    quoted_c_string(field, value)
}

/// A host path as a UTF-8 C string (libkrun rejects non-UTF-8 paths).
fn host_path(field: &'static str, path: &Path) -> MonocoreResult<CString> {
    let Some(text) = path.to_str() else {
        return Err(MonocoreError::NonUtf8Path(path.to_path_buf()));
    };
    c_string(field, text)
}

fn utf8_path(field: &'static str, bytes: &OsStr) -> MonocoreResult<CString> {
    host_path(field, Path::new(bytes))
}

impl Plan {
    pub(crate) fn new(config: &MicroVmConfig) -> MonocoreResult<Self> {
        if let Some(ip) = config.assigned_ip {
            return Err(MonocoreError::Unsupported {
                setting: "assigned_ip",
                value: ip.to_string(),
                reason: "libkrun 1.19.7 cannot set the guest's IPv4 address: TSI networking shares \
                         the host's addresses (the rewrite-IP call exists only in a fork); leave \
                         assigned_ip unset",
            });
        }
        let max_dirs = max_mapped_dirs(config.local_only);
        if config.mapped_dirs.len() > max_dirs {
            return Err(MonocoreError::Unsupported {
                setting: "mapped_dirs",
                value: config.mapped_dirs.len().to_string(),
                reason: MAPPED_DIRS_REASON,
            });
        }
        let network = if config.local_only {
            if let Some(first) = config.port_map.first() {
                return Err(MonocoreError::Unsupported {
                    setting: "port_map",
                    value: first.to_string(),
                    reason: "exposing guest ports needs libkrun's TSI networking, which in 1.19.7 \
                             also lets the guest connect to any address the host can reach and \
                             listen on any host port, so it cannot be local-only; set \
                             local_only = false to accept that, or remove the port map",
                });
            }
            Network::None
        } else {
            let ports = config
                .port_map
                .iter()
                .map(|pair| c_string("port_map", &pair.to_string()))
                .collect::<MonocoreResult<Vec<_>>>()?;
            Network::Tsi(CStrArray::new(ports))
        };

        let root = utf8_path("root_path", config.root_path.as_os_str())?;
        let mut mounts = Vec::with_capacity(config.mapped_dirs.len());
        let mut virtiofs = Vec::with_capacity(config.mapped_dirs.len());
        for (index, dir) in config.mapped_dirs.iter().enumerate() {
            let guest = monocore_rules::normalize_mount_point(dir.get_guest().as_str())
                .map_err(crate::InvalidMicroVMConfigError::from)?;
            let tag = fstab::tag(index);
            virtiofs.push((
                c_string("virtio-fs tag", &tag)?,
                utf8_path(
                    "mapped_dirs",
                    OsStr::from_bytes(dir.get_host().as_str().as_bytes()),
                )?,
            ));
            mounts.push(Mount {
                tag,
                guest_path: guest,
            });
        }

        let rlimits = if config.rlimits.is_empty() {
            None
        } else {
            let limits = config
                .rlimits
                .iter()
                .map(|l| c_string("rlimits", &l.to_string()))
                .collect::<MonocoreResult<Vec<_>>>()?;
            Some(CStrArray::new(limits))
        };
        let workdir = config
            .workdir_path
            .as_ref()
            .map(|w| unquoted_c_string("workdir_path", w.as_str()))
            .transpose()?;
        let env = CStrArray::new(
            config
                .env
                .iter()
                .map(|e| quoted_c_string("env", &e.to_string()))
                .collect::<MonocoreResult<Vec<_>>>()?,
        );
        let exec = match &config.exec_path {
            Some(path) => {
                let args = config
                    .args
                    .iter()
                    .map(|a| quoted_c_string("args", a))
                    .collect::<MonocoreResult<Vec<_>>>()?;
                Some((
                    unquoted_c_string("exec_path", path.as_str())?,
                    CStrArray::new(args),
                ))
            }
            None => None,
        };
        let console_output = config
            .console_output
            .as_ref()
            .map(|p| c_string("console_output", p.as_str()))
            .transpose()?;

        Ok(Self {
            num_vcpus: config.num_vcpus,
            ram_mib: config.ram_mib,
            log_level: config.log_level,
            root,
            mounts,
            virtiofs,
            network,
            rlimits,
            workdir,
            exec,
            env,
            console_output,
        })
    }

    /// Makes every libkrun configuration call. The context is freed if any
    /// call fails.
    pub(crate) fn apply(self) -> MonocoreResult<PreparedVm> {
        let mut ctx = KrunContext::new()?;
        ctx.set_vm_config(self.num_vcpus, self.ram_mib)?;
        ctx.set_root(&self.root)?;
        for (tag, host) in &self.virtiofs {
            ctx.add_virtiofs(tag, host)?;
        }
        ctx.disable_implicit_vsock()?;
        if let Network::Tsi(ports) = &self.network {
            ctx.add_vsock(krun::TSI_HIJACK_INET)?;
            ctx.set_port_map(ports)?;
        }
        if let Some(rlimits) = &self.rlimits {
            ctx.set_rlimits(rlimits)?;
        }
        if let Some(workdir) = &self.workdir {
            ctx.set_workdir(workdir)?;
        }
        match &self.exec {
            Some((path, args)) => ctx.set_exec(path, args, &self.env)?,
            None => ctx.set_env(&self.env)?,
        }
        if let Some(path) = &self.console_output {
            ctx.set_console_output(path)?;
        }
        Ok(PreparedVm {
            ctx,
            log_level: self.log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, os::unix::ffi::OsStringExt, path::PathBuf};

    use super::*;
    use crate::config::{EnvPair, PortPair};

    fn config() -> (tempfile::TempDir, MicroVmConfig) {
        let root = tempfile::tempdir().unwrap();
        let config = MicroVmConfig::new(root.path(), 128);
        (root, config)
    }

    #[test]
    fn more_mapped_dirs_than_libkrun_has_interrupt_lines_are_refused_up_front() {
        let root = tempfile::tempdir().unwrap();
        let share = tempfile::tempdir().unwrap();
        let mut config = MicroVmConfig::new(root.path(), 128);
        let pairs = |n: usize| -> Vec<crate::config::PathPair> {
            (0..n)
                .map(|i| format!("{}:/m{i}", share.path().display()).parse().unwrap())
                .collect()
        };
        let max = max_mapped_dirs(true);
        if cfg!(target_arch = "x86_64") {
            assert_eq!((max, max_mapped_dirs(false)), (7, 6));
        }
        config.mapped_dirs = pairs(max);
        assert!(Plan::new(&config).is_ok());
        config.mapped_dirs = pairs(max + 1);
        match Plan::new(&config) {
            Err(MonocoreError::Unsupported {
                setting: "mapped_dirs",
                value,
                ..
            }) => {
                assert_eq!(value, (max + 1).to_string())
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        config.local_only = false;
        config.mapped_dirs = pairs(max);
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::Unsupported {
                setting: "mapped_dirs",
                ..
            })
        ));
    }

    #[test]
    fn nul_in_a_string_is_a_typed_error_before_ffi() {
        let (_root, mut config) = config();
        config.exec_path = Some("/bin/e\0cho".into());
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::NulInString { field: "exec_path", ref value }) if value == "/bin/e\0cho"
        ));
        let (_root, mut config) = config_with_root(PathBuf::from("/tmp/a\0b"));
        config.exec_path = None;
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::NulInString {
                field: "root_path",
                ..
            })
        ));
    }

    fn config_with_root(root: PathBuf) -> (Option<tempfile::TempDir>, MicroVmConfig) {
        (None, MicroVmConfig::new(root, 128))
    }

    #[test]
    fn non_utf8_root_is_a_typed_error() {
        let path = PathBuf::from(OsString::from_vec(b"/tmp/\xff\xfe".to_vec()));
        let (_r, config) = config_with_root(path.clone());
        match Plan::new(&config) {
            Err(MonocoreError::NonUtf8Path(p)) => assert_eq!(p, path),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn quotes_in_args_and_env_are_refused() {
        let (_root, mut config) = config();
        config.exec_path = Some("/bin/echo".into());
        config.args = vec!["a\" KRUN_INIT=/evil \"".into()];
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::QuoteInString { field: "args", .. })
        ));
        config.args.clear();
        config.env = vec![EnvPair::new("A", "x\"y")];
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::QuoteInString { field: "env", ref value }) if value == "A=x\"y"
        ));
    }

    #[test]
    fn quotes_in_exec_path_and_workdir_are_refused() {
        let (_root, mut config) = config();
        config.exec_path = Some("/bin/e\"cho".into());
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::QuoteInString {
                field: "exec_path",
                ..
            })
        ));
        config.exec_path = Some("/bin/echo".into());
        config.workdir_path = Some("/w\"x".into());
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::QuoteInString {
                field: "workdir_path",
                ..
            })
        ));
    }

    #[test]
    fn spaces_in_unquoted_exec_path_and_workdir_cannot_inject_kernel_parameters() {
        // libkrun writes `KRUN_INIT=<exec> KRUN_WORKDIR=<workdir>` unquoted on
        // the guest kernel command line.
        let (_root, mut config) = config();
        config.exec_path = Some("/bin/true init=/evil".into());
        match Plan::new(&config) {
            Err(MonocoreError::Unsupported {
                setting: "exec_path",
                value,
                ..
            }) => {
                assert_eq!(value, "/bin/true init=/evil")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        config.exec_path = Some("/bin/true".into());
        config.workdir_path = Some("/tmp -- x".into());
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::Unsupported {
                setting: "workdir_path",
                ..
            })
        ));
        // Args and env are quoted by libkrun: a space there is fine.
        config.workdir_path = Some("/tmp".into());
        config.args = vec!["two words".into()];
        config.env = vec![EnvPair::new("A", "b c")];
        assert!(Plan::new(&config).is_ok());
    }

    #[test]
    fn network_settings_are_mapped_or_refused_never_ignored() {
        let (_root, mut config) = config();
        // Default: local only, no ports → no vsock at all.
        assert!(config.local_only);
        assert!(matches!(Plan::new(&config).unwrap().network, Network::None));

        config.port_map = vec![PortPair::with_distinct(8080, 80)];
        match Plan::new(&config) {
            Err(MonocoreError::Unsupported {
                setting: "port_map",
                value,
                ..
            }) => {
                assert_eq!(value, "8080:80")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }

        config.local_only = false;
        assert!(matches!(
            Plan::new(&config).unwrap().network,
            Network::Tsi(_)
        ));
        config.port_map.clear();
        assert!(matches!(
            Plan::new(&config).unwrap().network,
            Network::Tsi(_)
        ));

        config.assigned_ip = Some("10.0.0.2".parse().unwrap());
        assert!(matches!(
            Plan::new(&config),
            Err(MonocoreError::Unsupported {
                setting: "assigned_ip",
                ..
            })
        ));
    }
}
