//! Applying a validated config to a libkrun context.
//!
//! Order matters: first every value is turned into what libkrun reads
//! (C strings, the port map, the agent's run spec); then the VM's private
//! root is filled ([`agent`](super::agent)); only then is a context created
//! and configured. A validated config passes all of it: validation holds
//! every rule libkrun and the agent would enforce (`monocore_rules`), and
//! what is left here (a NUL, a non-UTF-8 path) is defence in depth.
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
//! So monocore maps the config like this, never ignoring a setting. The
//! refusals are rules of `monocore_rules` (validation refuses them, `vm!`
//! at compile time), except the kernel's, which is a fact of this host:
//!
//! | config | what monocore does |
//! |---|---|
//! | `local_only = true` (default), empty `port_map` | a vsock device without TSI (`krun_add_vsock(0)`), which carries only the guest agent's control channel (a vsock port the guest listens on, reached from the host through a Unix socket in the run directory): the guest has no network beyond its own loopback. Stricter than "local only", never looser. |
//! | `local_only = true`, non-empty `port_map` | invalid ([`RuleError::PortMapNeedsNetworking`]): exposing ports needs TSI, which also opens outbound access to everything. |
//! | `local_only = false` | TSI for inet sockets (`krun_add_vsock(HIJACK_INET)`) with the port map passed explicitly (an empty array, never NULL). The guest can connect anywhere the host can, and listen on host ports. |
//! | `assigned_ip = Some(_)` | invalid ([`RuleError::IpUnsupported`]). |
//! | `local_only = false` with an ELF kernel (the compat kernel) | [`MonocoreError::HostCannotRun`] ([`ConfigErrorKind::NetworkingNeedsTsi`]), before anything starts: TSI needs libkrunfw's kernel patches, which an ELF kernel of monocore's build does not have. Which kernel a VM boots is a fact of the host ([`KernelChoice::resolve`]), so this is not a validation rule. |
//!
//! [`RuleError::PortMapNeedsNetworking`]: monocore_rules::RuleError::PortMapNeedsNetworking
//! [`RuleError::IpUnsupported`]: monocore_rules::RuleError::IpUnsupported
//! [`ConfigErrorKind::NetworkingNeedsTsi`]: crate::ConfigErrorKind::NetworkingNeedsTsi

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
    /// // A setting libkrun cannot honour is refused by validation, never
    /// // by libkrun and never ignored.
    /// let mut config = MicroVmConfig::new(root.path(), 256);
    /// config.assigned_ip = Some("10.0.0.2".parse()?);
    /// let err = MicroVm::from_config(config).unwrap_err();
    /// assert!(err.to_string().starts_with("invalid microVM configuration: ip: the guest's IPv4 address cannot be set"));
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

    /// Checks the facts of this host that a config must fit, with the
    /// kernel [`KernelChoice::Auto`] picks, without any FFI call or file
    /// write: a kernel that can boot here exists; `/dev/kvm` opens; the RAM
    /// is no more than the host has; the vCPUs no more than its KVM runs;
    /// networking only with a kernel that has TSI (libkrunfw's). What a
    /// config's values must be is validation's ([`MicroVmConfig::validate`]),
    /// done when the `MicroVm` was made; this is the rest, so that a VM that
    /// starts does not fail in `krun_start_enter` with `EINVAL`.
    /// [`spawn`](Self::spawn) and [`start`](Self::start) make this check
    /// first, so nothing starts for a config this host cannot run.
    ///
    /// ```
    /// use monocore::{kernel::KernelChoice, vm::{MicroVm, MicroVmConfig}, MonocoreError};
    /// let root = tempfile::tempdir()?;
    /// let mut config = MicroVmConfig::new(root.path(), u32::MAX); // 4 PiB
    /// let vm = MicroVm::from_config(config.clone())?; // valid ...
    /// let err = vm.check_support_with_kernel(&KernelChoice::Libkrunfw).unwrap_err();
    /// assert!(matches!(err, MonocoreError::HostCannotRun(_) | MonocoreError::HostCannotBoot { .. }), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_support(&self) -> MonocoreResult<()> {
        self.check_support_with_kernel(&KernelChoice::Auto)
    }

    /// [`check_support`](Self::check_support) with this kernel.
    pub fn check_support_with_kernel(&self, kernel: &KernelChoice) -> MonocoreResult<()> {
        let kernel = kernel.resolve()?;
        super::host_facts::check(self.get_config(), &kernel, &crate::host::check_kvm_limits())
    }

    /// Runs the VM in this process: [`prepare`](Self::prepare), then
    /// [`PreparedVm::enter`].
    ///
    /// **Returns only on error.** On success the VMM ends this whole process
    /// with the guest's exit code when the guest exits (`krun_start_enter`
    /// never returns). To keep your process, use [`MicroVm::spawn`].
    pub fn start(self) -> MonocoreResult<Infallible> {
        self.check_support()?;
        self.prepare()?.enter()
    }
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
        // Rules of `monocore_rules`, enforced by validation; checked again
        // here so that a `Plan` never passes libkrun a setting it would
        // ignore or refuse, even for a config made without `validate`.
        if let Some(error) = config.value_errors().into_iter().next() {
            return Err(MonocoreError::InvalidMicroVmConfig(error));
        }
        let network = if config.local_only {
            Network::None
        } else {
            super::host_facts::check_kernel(config, kernel)?;
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
            // The agent always serves the control channel; `spawn` adds
            // its keep/idle flags.
            spec: agent::spec_for(config, monocore_agent::spec::FLAG_CONTROL)?,
        })
    }

    /// Makes every libkrun configuration call, with `guest_root` (already
    /// filled by [`agent::install`]) as the VM's root. The context is freed
    /// if any call fails.
    fn apply(self, guest_root: &Path, run: RunHold) -> MonocoreResult<PreparedVm> {
        let root = host_path("the VM's private root", guest_root)?;
        let run_dir = guest_root.parent().unwrap_or(guest_root);
        let control = host_path("the control socket", &super::exec::control_socket(run_dir)?)?;
        let agent = c_string("agent", agent::AGENT_GUEST_PATH)?;
        let mut ctx = KrunContext::new()?;
        ctx.set_vm_config(self.num_vcpus, self.ram_mib)?;
        ctx.set_root(&root)?;
        for (tag, host) in &self.shares {
            ctx.add_virtiofs(tag, host)?;
        }
        // The implicit vsock device would hijack sockets (TSI); ours does so
        // only with networking, and always carries the control channel.
        ctx.disable_implicit_vsock()?;
        match &self.network {
            Network::Tsi(ports) => {
                ctx.add_vsock(krun::TSI_HIJACK_INET)?;
                ctx.set_port_map(ports)?;
            }
            Network::None => ctx.add_vsock(0)?,
        }
        ctx.add_vsock_port_listen(monocore_agent::control::CONTROL_PORT, &control)?;
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
    fn a_plan_never_passes_libkrun_what_validation_refuses() {
        // Even for a config made without `validate`: the rules are checked
        // again, with the same located error.
        let (_root, mut config) = config();
        config.port_map = vec![PortPair::with_distinct(8080, 80)];
        match plan(&config) {
            Err(MonocoreError::InvalidMicroVmConfig(e)) => {
                assert_eq!(e.at, monocore_rules::Field::PortMap.at(0))
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn non_utf8_root_is_a_typed_error() {
        let path = PathBuf::from(OsString::from_vec(b"/tmp/\xff\xfe".to_vec()));
        let config = MicroVmConfig::new(path.clone(), 128);
        // A value rule, so refused with the root's place.
        match plan(&config) {
            Err(MonocoreError::InvalidMicroVmConfig(e)) => {
                assert_eq!(e.at, monocore_rules::Field::Root.whole())
            }
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
            Err(MonocoreError::HostCannotRun(_))
        ));
    }

    #[test]
    fn network_settings_are_mapped_or_refused_never_ignored() {
        let (_root, mut config) = config();
        // Default: local only, no ports → no vsock at all.
        assert!(config.local_only);
        assert!(matches!(plan(&config).unwrap().network, Network::None));

        config.local_only = false;
        config.port_map = vec![PortPair::with_distinct(8080, 80)];
        assert!(matches!(plan(&config).unwrap().network, Network::Tsi(_)));
        config.port_map.clear();
        assert!(matches!(plan(&config).unwrap().network, Network::Tsi(_)));
    }
}
