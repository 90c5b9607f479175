//! [`Plan`]: a validated config turned into what libkrun and the agent
//! read, and applied to a libkrun context.
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
//! # Networking
//!
//! `net = true` is the network monocore recommends, and the only one the
//! compat kernel has: a virtio-net device (`krun_add_net_unixstream`, the
//! guest's MAC given, never NULL) whose host end is passt, with the policy
//! (the egress allow-list, DNS, published ports) kept on the host: see
//! [`crate::net`]. It is planned in [`Plan::new`] (passt found, names
//! resolved: typed errors before anything starts), wired by
//! [`Plan::apply`] (passt's socketpair, the VMM's end given to libkrun),
//! and started in the VM's process before it enters the VM. It excludes
//! TSI.
//!
//! The rest of this section is TSI, libkrun's older networking, kept as an
//! explicit opt-in (`local_only = false`) for libkrunfw hosts.
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
    ffi::{CString, OsStr},
    os::unix::ffi::OsStrExt,
    path::Path,
};

use monocore_agent::spec::Spec;

use super::{
    guest_files,
    krun::{self, CStrArray, KrunContext},
};
use crate::{
    config::{LogLevel, MicroVmConfig},
    error::{MonocoreError, MonocoreResult},
    host::{fit, kernel::GuestKernel},
    state::RunPaths,
};

/// Everything libkrun will read, converted and checked before any FFI call.
pub(crate) struct Plan {
    num_vcpus: u8,
    ram_mib: u32,
    log_level: LogLevel,
    /// virtio-fs shares: the user's root first, then the mapped directories.
    shares: Vec<(CString, CString)>,
    network: Network,
    /// With `net`: the passt network, wired by [`Plan::apply`] and started
    /// when the VM is entered.
    net: Option<crate::net::NetPlan>,
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
    /// The plan for `config`, its network (if any) planned here: passt
    /// found and the allow-list's names resolved, in this process.
    pub(crate) fn new(config: &MicroVmConfig, kernel: &GuestKernel) -> MonocoreResult<Self> {
        let net = crate::net::NetPlan::new(config)?;
        Self::with_net(config, kernel, net)
    }

    /// The plan for `config` with a network planned already (by the parent
    /// of a VM helper, whose environment the helper does not have); `None`
    /// for a config with `net` plans it here.
    pub(crate) fn with_net(
        config: &MicroVmConfig,
        kernel: &GuestKernel,
        net: Option<crate::net::NetPlan>,
    ) -> MonocoreResult<Self> {
        let net = match net {
            Some(net) if config.net => Some(net),
            _ => crate::net::NetPlan::new(config)?,
        };
        // Rules of `monocore_rules`, enforced by validation; checked again
        // here so that a `Plan` never passes libkrun a setting it would
        // ignore or refuse, even for a config made without `validate`.
        if let Some(error) = config.value_errors().into_iter().next() {
            return Err(MonocoreError::InvalidMicroVmConfig(error));
        }
        let network = if config.local_only {
            Network::None
        } else {
            fit::check_kernel(config, kernel)?;
            let ports = config
                .port_map
                .iter()
                .map(|pair| c_string("port_map", &pair.to_string()))
                .collect::<MonocoreResult<Vec<_>>>()?;
            Network::Tsi(CStrArray::new(ports))
        };

        let mut shares = Vec::with_capacity(config.mapped_dirs.len() + 1);
        shares.push((
            c_string("virtio-fs tag", guest_files::ROOT_TAG)?,
            host_path("root_path", &config.root_path)?,
        ));
        for (index, dir) in config.mapped_dirs.iter().enumerate() {
            shares.push((
                c_string("virtio-fs tag", &guest_files::mapped_dir_tag(index))?,
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
            net,
            console_output,
            kernel,
            // The agent always serves the control channel; `spawn` adds
            // its keep/idle flags.
            spec: guest_files::spec_for(config, monocore_agent::spec::FLAG_CONTROL)?,
        })
    }

    /// Takes the planned network out, for the helper's request.
    pub(crate) fn take_net(&mut self) -> Option<crate::net::NetPlan> {
        self.net.take()
    }

    /// Makes every libkrun configuration call, with the run `run`'s private
    /// root (already filled by [`guest_files::install`]) as the VM's root.
    /// The context is freed if any call fails.
    pub(crate) fn apply(
        self,
        run: &RunPaths,
    ) -> MonocoreResult<(KrunContext, LogLevel, Option<crate::net::WiredNet>)> {
        let root = host_path("the VM's private root", &run.guest_root())?;
        let control = host_path("the control socket", &run.control_socket()?)?;
        let agent = c_string("agent", guest_files::AGENT_GUEST_PATH)?;
        let net = self.net.map(crate::net::NetPlan::wire).transpose()?;
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
        if let Some(net) = &net {
            ctx.add_net_unixstream(net.vmm_end()?, &crate::net::GUEST_MAC)?;
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
        Ok((ctx, self.log_level, net))
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
