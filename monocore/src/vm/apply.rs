//! Applying a validated config to a libkrun context.
//!
//! Order matters: first every value is turned into what libkrun reads
//! (C strings, the port map, the agent's run spec), so a NUL byte, a
//! non-UTF-8 host path or an unsupported setting is a typed error before any
//! FFI call; then the VM's private root is filled ([`agent`](super::agent));
//! only then is a context created and configured.
//!
//! libkrun boots the private root and runs the guest agent there; the user's
//! root filesystem and every mapped directory are virtio-fs shares that the
//! agent mounts. Nothing of the user's command reaches the kernel command
//! line: libkrun is given the agent's path with no arguments and an empty
//! environment.
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
//! | `local_only = false` with an ELF kernel (the compat kernel) | [`MonocoreError::Unsupported`]: TSI needs libkrunfw's kernel patches, which an ELF kernel of monocore's build does not have. |

use std::{
    convert::Infallible,
    ffi::{CString, OsStr},
    fs::File,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::Path,
};

use monocore_agent::spec::Spec;

use super::{
    LogLevel, MicroVm, MicroVmConfig, agent,
    krun::{self, CStrArray, KrunContext},
    run_dir::{self, RunDir},
    vmm_log::{self, Installed, LogTarget},
};
use crate::{
    MonocoreError, MonocoreResult,
    kernel::{GuestKernel, KernelChoice},
};

/// A libkrun context with a config fully applied, ready to enter.
///
/// Made by [`MicroVm::prepare`]. Dropping it frees the context and removes
/// the VM's private run directory without starting anything.
#[derive(Debug)]
pub struct PreparedVm {
    ctx: KrunContext,
    log_level: LogLevel,
    // Dropped after the context: the run directory the context points at.
    _run: RunHold,
}

/// How a prepared VM keeps its private run directory.
#[derive(Debug)]
enum RunHold {
    /// It made the directory, and removes it when dropped.
    Owned { _dir: RunDir },
    /// Another process (the one that spawned the VM helper) owns it; this
    /// one holds its lock until it ends.
    Joined { _lock: File },
}

impl PreparedVm {
    /// Enters the VM in this process with `krun_start_enter`.
    ///
    /// **Returns only on error.** On success libkrun runs the guest and,
    /// when the guest exits, ends this whole process (`_exit`) with the
    /// guest's exit code: no destructor runs and nothing after this call
    /// executes. Use [`MicroVm::spawn`] to run a VM and keep your process.
    /// (The VM's run directory is then removed by a later run's sweep.)
    ///
    /// The VMM logs to this process's stderr at the config's log level. If
    /// the program has already set a [`log`](https://docs.rs/log) logger,
    /// that logger is kept and receives the VMM's records instead (libkrun
    /// logs through the same `log` facade); nothing panics or aborts.
    pub fn enter(self) -> MonocoreResult<Infallible> {
        vmm_log::install(LogTarget::Stderr, self.log_level, false);
        Err(self.ctx.start_enter())
    }

    /// Like [`enter`](Self::enter), with the VMM log going to `log_fd` and
    /// `RUST_LOG` refining the filter. Used by the VM helper, whose parent
    /// reads that log: there, a logger that is already set (it cannot be
    /// the program's own, whose `main` never runs in the helper) is an
    /// error rather than a log the parent never sees.
    pub(crate) fn enter_with_log(self, log_fd: OwnedFd) -> MonocoreResult<Infallible> {
        if vmm_log::install(LogTarget::Fd(log_fd), self.log_level, true) == Installed::Existing {
            return Err(MonocoreError::HelperFailed {
                message: "a `log` logger was already set in the helper process (by a constructor \
                          that runs before monocore's), so the VMM's log cannot reach the parent"
                    .to_owned(),
            });
        }
        Err(self.ctx.start_enter())
    }

    /// The libkrun context id (for diagnostics).
    pub fn context_id(&self) -> u32 {
        self.ctx.id()
    }
}

impl MicroVm {
    /// Applies the validated config to a new libkrun context, with the
    /// kernel [`KernelChoice::Auto`] picks: makes the VM's private run
    /// directory (the guest agent and its run spec, see [`crate::kernel`]
    /// and the `vm` module docs), then makes every `krun_*` configuration
    /// call. Nothing is started, and nothing is written to the root
    /// filesystem.
    ///
    /// ```
    /// use monocore::{kernel::KernelChoice, vm::{MicroVm, MicroVmConfig}};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.exec_path = Some("/bin/true".into());
    /// let vm = MicroVm::from_config(config)?;
    /// // `prepare()` picks the kernel for this host; libkrunfw's kernel is
    /// // named here so the example runs anywhere (it is loaded only when a
    /// // VM starts).
    /// let prepared = vm.prepare_with_kernel(&KernelChoice::Libkrunfw)?;
    /// drop(prepared); // frees the context and the run directory; nothing ran
    ///
    /// // A setting libkrun cannot honour is refused, not ignored.
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.assigned_ip = Some("10.0.0.2".parse()?);
    /// let err = MicroVm::from_config(config)?
    ///     .prepare_with_kernel(&KernelChoice::Libkrunfw)
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("unsupported setting assigned_ip = 10.0.0.2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare(&self) -> MonocoreResult<PreparedVm> {
        self.prepare_with_kernel(&KernelChoice::Auto)
    }

    /// [`prepare`](Self::prepare) with this kernel.
    pub fn prepare_with_kernel(&self, kernel: &KernelChoice) -> MonocoreResult<PreparedVm> {
        let plan = Plan::new(self.get_config(), &kernel.resolve()?)?;
        let run = RunDir::create(&run_dir::default_parent())?;
        agent::install(&run.guest_root(), &plan.spec)?;
        plan.apply(&run.guest_root(), RunHold::Owned { _dir: run })
    }

    /// Prepares the VM in the private root that the spawning process made
    /// (`guest_root`, already holding the agent and the spec); used by the
    /// VM helper.
    pub(crate) fn prepare_in(
        &self,
        guest_root: &Path,
        kernel: &GuestKernel,
    ) -> MonocoreResult<PreparedVm> {
        let plan = Plan::new(self.get_config(), kernel)?;
        let hold = run_dir::hold(guest_root)?;
        plan.apply(guest_root, RunHold::Joined { _lock: hold })
    }

    /// Checks, without any FFI call or file write, that libkrun 1.19.7 can
    /// honour this config with the kernel [`KernelChoice::Auto`] picks: a
    /// kernel that can boot here exists, every string converts to a C
    /// string, host paths are UTF-8, and the network settings are supported
    /// (see the module docs: a `port_map` needs `local_only = false`;
    /// `assigned_ip` is not supported). [`prepare`] and
    /// [`spawn`](Self::spawn) make the same check first, so an unsupported
    /// setting fails before any process starts.
    ///
    /// [`prepare`]: Self::prepare
    ///
    /// ```
    /// use monocore::{kernel::KernelChoice, vm::{MicroVm, MicroVmConfig}};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.port_map = vec!["8080:80".parse()?];
    /// let vm = MicroVm::from_config(config.clone())?;
    /// let err = vm.check_support_with_kernel(&KernelChoice::Libkrunfw).unwrap_err();
    /// assert!(err.to_string().contains("local_only = false"));
    /// config.local_only = false;
    /// let vm = MicroVm::from_config(config)?;
    /// assert!(vm.check_support_with_kernel(&KernelChoice::Libkrunfw).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_support(&self) -> MonocoreResult<()> {
        self.check_support_with_kernel(&KernelChoice::Auto)
    }

    /// [`check_support`](Self::check_support) with this kernel.
    pub fn check_support_with_kernel(&self, kernel: &KernelChoice) -> MonocoreResult<()> {
        Plan::new(self.get_config(), &kernel.resolve()?).map(drop)
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
     the balloon, entropy and console devices, the VM's private root and the root filesystem \
     take 5 and networking (local_only = false) 1 more, so at most 6 directories can be mapped \
     (5 with networking); beyond that krun_start_enter fails with EINVAL";
#[cfg(not(target_arch = "x86_64"))]
const MAPPED_DIRS_REASON: &str =
    "libkrun 1.19.7 has no interrupt line left for more virtio-fs devices";

/// The most mapped directories libkrun 1.19.7 can attach on this
/// architecture (measured on x86_64 with one virtio-fs root: 8 mapped
/// directories with local_only failed in `krun_start_enter` with EINVAL, 7
/// booted; the second root share takes one of them).
pub(crate) fn max_mapped_dirs(local_only: bool) -> usize {
    // Interrupt lines for virtio-mmio devices: x86_64 IRQ 5..=15; aarch64
    // 32..=159 (krun-arch layout.rs).
    let lines: usize = if cfg!(target_arch = "x86_64") {
        11
    } else {
        128
    };
    // balloon + rng + console + the private root + the user's root.
    let fixed = 5 + usize::from(!local_only);
    lines.saturating_sub(fixed)
}

/// Everything libkrun will read, converted and checked before any FFI call.
pub(crate) struct Plan {
    num_vcpus: u8,
    ram_mib: u32,
    log_level: LogLevel,
    /// virtio-fs shares: the user's root first, then the mapped directories.
    shares: Vec<(CString, CString)>,
    network: Network,
    console_output: Option<CString>,
    kernel: Option<(CString, CString)>,
    pub(crate) spec: Spec,
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

/// A host path as a UTF-8 C string (libkrun rejects non-UTF-8 paths).
fn host_path(field: &'static str, path: &Path) -> MonocoreResult<CString> {
    let Some(text) = path.to_str() else {
        return Err(MonocoreError::NonUtf8Path(path.to_path_buf()));
    };
    c_string(field, text)
}

impl Plan {
    pub(crate) fn new(config: &MicroVmConfig, kernel: &GuestKernel) -> MonocoreResult<Self> {
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
            if matches!(kernel, GuestKernel::Elf { .. }) {
                return Err(MonocoreError::Unsupported {
                    setting: "local_only",
                    value: "false".to_owned(),
                    reason: "libkrun's networking (TSI) needs libkrunfw's kernel patches, and \
                             this VM boots an ELF kernel (the compat kernel on this kvm_pvm \
                             host) that does not have them; keep local_only = true",
                });
            }
            let ports = config
                .port_map
                .iter()
                .map(|pair| c_string("port_map", &pair.to_string()))
                .collect::<MonocoreResult<Vec<_>>>()?;
            Network::Tsi(CStrArray::new(ports))
        };

        let mut shares = Vec::with_capacity(config.mapped_dirs.len() + 1);
        shares.push((
            c_string("virtio-fs tag", agent::ROOT_TAG)?,
            host_path("root_path", &config.root_path)?,
        ));
        for (index, dir) in config.mapped_dirs.iter().enumerate() {
            shares.push((
                c_string("virtio-fs tag", &agent::mapped_dir_tag(index))?,
                host_path(
                    "mapped_dirs",
                    Path::new(OsStr::from_bytes(dir.get_host().as_str().as_bytes())),
                )?,
            ));
        }
        let console_output = config
            .console_output
            .as_ref()
            .map(|p| c_string("console_output", p.as_str()))
            .transpose()?;
        let kernel = match kernel {
            GuestKernel::Libkrunfw => None,
            GuestKernel::Elf { path, cmdline } => Some((
                host_path("kernel", path)?,
                c_string("kernel command line", cmdline)?,
            )),
        };

        Ok(Self {
            num_vcpus: config.num_vcpus,
            ram_mib: config.ram_mib,
            log_level: config.log_level,
            shares,
            network,
            console_output,
            kernel,
            spec: agent::spec_for(config)?,
        })
    }

    /// Makes every libkrun configuration call, with `guest_root` (already
    /// filled by [`agent::install`]) as the VM's root. The context is freed
    /// if any call fails.
    fn apply(self, guest_root: &Path, run: RunHold) -> MonocoreResult<PreparedVm> {
        let root = host_path("the VM's private root", guest_root)?;
        let agent = c_string("agent", agent::AGENT_GUEST_PATH)?;
        let mut ctx = KrunContext::new()?;
        ctx.set_vm_config(self.num_vcpus, self.ram_mib)?;
        ctx.set_root(&root)?;
        for (tag, host) in &self.shares {
            ctx.add_virtiofs(tag, host)?;
        }
        ctx.disable_implicit_vsock()?;
        if let Network::Tsi(ports) = &self.network {
            ctx.add_vsock(krun::TSI_HIJACK_INET)?;
            ctx.set_port_map(ports)?;
        }
        if let Some((path, cmdline)) = &self.kernel {
            ctx.set_kernel_elf(path, cmdline)?;
        }
        // The agent, with no arguments and an empty environment (never NULL:
        // a NULL envp would copy this process's environment into the guest).
        ctx.set_exec(
            &agent,
            &CStrArray::new(Vec::new()),
            &CStrArray::new(Vec::new()),
        )?;
        if let Some(path) = &self.console_output {
            ctx.set_console_output(path)?;
        }
        Ok(PreparedVm {
            ctx,
            log_level: self.log_level,
            _run: run,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, os::unix::ffi::OsStringExt, path::PathBuf};

    use super::*;
    use crate::config::{EnvPair, PortPair};

    const LIBKRUNFW: GuestKernel = GuestKernel::Libkrunfw;

    fn config() -> (tempfile::TempDir, MicroVmConfig) {
        let root = tempfile::tempdir().unwrap();
        let config = MicroVmConfig::new(root.path(), 128);
        (root, config)
    }

    fn plan(config: &MicroVmConfig) -> MonocoreResult<Plan> {
        Plan::new(config, &LIBKRUNFW)
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
            assert_eq!((max, max_mapped_dirs(false)), (6, 5));
        }
        config.mapped_dirs = pairs(max);
        assert!(plan(&config).is_ok());
        config.mapped_dirs = pairs(max + 1);
        match plan(&config) {
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
            plan(&config),
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
            plan(&config),
            Err(MonocoreError::NulInString { field: "exec_path", ref value }) if value == "/bin/e\0cho"
        ));
        let mut config = MicroVmConfig::new(PathBuf::from("/tmp/a\0b"), 128);
        config.exec_path = None;
        assert!(matches!(
            plan(&config),
            Err(MonocoreError::NulInString {
                field: "root_path",
                ..
            })
        ));
    }

    #[test]
    fn non_utf8_root_is_a_typed_error() {
        let path = PathBuf::from(OsString::from_vec(b"/tmp/\xff\xfe".to_vec()));
        let config = MicroVmConfig::new(path.clone(), 128);
        match plan(&config) {
            Err(MonocoreError::NonUtf8Path(p)) => assert_eq!(p, path),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn quotes_and_spaces_reach_the_agent_instead_of_the_kernel_command_line() {
        // libkrun would put these on the guest kernel command line, where a
        // `"` or a space ends the value; the agent's spec carries them as is.
        let (_root, mut config) = config();
        config.exec_path = Some("/bin/my prog".into());
        config.workdir_path = Some("/w \"x\"".into());
        config.args = vec!["a\" KRUN_INIT=/evil \"".into()];
        config.env = vec![EnvPair::new("A", "x\"y z")];
        let plan = plan(&config).unwrap();
        assert_eq!(plan.spec.exec, b"/bin/my prog");
        assert_eq!(plan.spec.workdir, b"/w \"x\"");
        assert_eq!(plan.spec.args, [b"a\" KRUN_INIT=/evil \"".to_vec()]);
        assert_eq!(plan.spec.env, [b"A=x\"y z".to_vec()]);
    }

    #[test]
    fn the_root_and_mapped_dirs_are_shares_in_order() {
        let (root, mut config) = config();
        config.mapped_dirs = vec![format!("{}:/data", root.path().display()).parse().unwrap()];
        let plan = plan(&config).unwrap();
        let tags: Vec<_> = plan
            .shares
            .iter()
            .map(|(t, _)| t.to_str().unwrap())
            .collect();
        assert_eq!(tags, ["monocore_root", "monocore_0"]);
        assert_eq!(
            plan.shares[0].1.to_str().unwrap(),
            root.path().to_str().unwrap()
        );
    }

    #[test]
    fn an_elf_kernel_gets_its_command_line_and_no_tsi() {
        let (_root, mut config) = config();
        let elf = GuestKernel::Elf {
            path: "/k/vmlinux".into(),
            cmdline: crate::kernel::elf_cmdline(true),
        };
        let plan = Plan::new(&config, &elf).unwrap();
        let (path, cmdline) = plan.kernel.unwrap();
        assert_eq!(path.to_str().unwrap(), "/k/vmlinux");
        assert!(cmdline.to_str().unwrap().contains("clearcpuid="));
        config.local_only = false;
        assert!(matches!(
            Plan::new(&config, &elf),
            Err(MonocoreError::Unsupported {
                setting: "local_only",
                ..
            })
        ));
    }

    #[test]
    fn network_settings_are_mapped_or_refused_never_ignored() {
        let (_root, mut config) = config();
        // Default: local only, no ports → no vsock at all.
        assert!(config.local_only);
        assert!(matches!(plan(&config).unwrap().network, Network::None));

        config.port_map = vec![PortPair::with_distinct(8080, 80)];
        match plan(&config) {
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
        assert!(matches!(plan(&config).unwrap().network, Network::Tsi(_)));
        config.port_map.clear();
        assert!(matches!(plan(&config).unwrap().network, Network::Tsi(_)));

        config.assigned_ip = Some("10.0.0.2".parse().unwrap());
        assert!(matches!(
            plan(&config),
            Err(MonocoreError::Unsupported {
                setting: "assigned_ip",
                ..
            })
        ));
    }
}
