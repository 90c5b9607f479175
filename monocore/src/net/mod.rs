//! The guest's network (`net`): a virtio-net interface whose host end is a
//! passt process, and a policy kept on the host, never in the guest.
//!
//! ```text
//!   guest eth0 10.0.2.15/24, gateway and DNS 10.0.2.2
//!        │ virtio-net frames (libkrun, a socketpair)
//!   passt ── in a network namespace of its own, as user nobody
//!        │ passt's sockets: connect(2), bind(2) in that namespace
//!   the namespace: lo only, holding 127.0.0.0/8, the allow-list's
//!   addresses, one listener per allowed destination, DNS at 127.0.0.1:53
//!        │ accepted connections, checked against the policy again
//!   relays (threads of the VM's process, in the host's namespace)
//!        │ connect(2) to the allowed destination; 127.0.0.1 is the host's
//!   the host
//! ```
//!
//! A guest's connection becomes one of passt's, which can reach nothing
//! but what the namespace holds: a listener for each allowed destination
//! (the gateway, 10.0.2.2, is the namespace's 127.0.0.1, which passt maps
//! to the host loopback), whose relay connects on the host only if the
//! destination is allowed. Anything else finds no route or no listener
//! and fails at once (refused or unreachable). Raw packets and IPv6 never
//! leave passt (IPv4 TCP, UDP and ICMP are all it translates; ICMP is off,
//! the guest kernel has no IPv6). The only UDP that goes anywhere is DNS
//! to the gateway, answered by [`dns`] from the allow-list's names.
//!
//! Published ports (`port_map`) listen on the host's 127.0.0.1; each
//! connection enters the namespace and reaches a port passt forwards to
//! the guest.
//!
//! Nothing outlives the VM's process: the namespace lives only through its
//! sockets and passt, and passt ends when its socket closes.

mod dns;
mod namespace;
mod passt;
mod policy;
mod relay;

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, TcpListener},
    os::fd::OwnedFd,
    sync::Arc,
};

pub use crate::error::NetError;
pub use passt::DEFAULT_PASST_DIR;
pub(crate) use passt::GUEST_MAC;

use crate::config::MicroVmConfig;

/// The passt that a VM with `net` would run here: `MONOCORE_PASST`, else
/// the private install of `scripts/install-passt.sh` (`MONOCORE_PASST_DIR`
/// or [`DEFAULT_PASST_DIR`]), else `passt` on `PATH`.
///
/// ```no_run
/// match monocore::net::find_passt() {
///     Ok(path) => println!("passt: {}", path.display()),
///     Err(e) => println!("no networking here: {e}"),
/// }
/// ```
pub fn find_passt() -> Result<std::path::PathBuf, NetError> {
    passt::find().map(|binary| binary.path().to_path_buf())
}

/// The first port tried, in passt's namespace, for a published port.
const FIRST_INNER_PORT: u16 = 61000;

/// The network of one VM, planned: checked and resolved, nothing started.
/// A VM helper gets it from its parent, as it was planned there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct NetPlan {
    passt: passt::PasstBinary,
    policy: policy::Policy,
    /// Published ports: (host, guest).
    publish: Vec<(u16, u16)>,
}

impl NetPlan {
    /// The plan for `config`'s network, if it has one: passt found, the
    /// allow-list's names resolved and checked.
    pub(crate) fn new(config: &MicroVmConfig) -> Result<Option<Self>, NetError> {
        if !config.net {
            return Ok(None);
        }
        let passt = passt::find()?;
        let policy = policy::Policy::resolve(
            config.allow.iter().map(|a| a.rule()),
            &policy::host_resolver,
        )?;
        let publish = config
            .port_map
            .iter()
            .map(|p| (p.get_host(), p.get_guest()))
            .collect();
        Ok(Some(Self {
            passt,
            policy,
            publish,
        }))
    }

    /// Makes passt's socketpair, so that the VMM can be given its end
    /// before anything starts (see [`WiredNet::start`]).
    pub(crate) fn wire(self) -> Result<WiredNet, NetError> {
        let (vmm, passt) =
            std::os::unix::net::UnixStream::pair().map_err(|source| NetError::Namespace {
                step: "a socketpair for passt",
                source,
            })?;
        Ok(WiredNet {
            plan: self,
            vmm: OwnedFd::from(vmm),
            passt: OwnedFd::from(passt),
        })
    }
}

/// A planned network with passt's socketpair made: what a prepared VM
/// holds until it is entered. Dropped unstarted, nothing of it ran.
#[derive(Debug)]
pub(crate) struct WiredNet {
    plan: NetPlan,
    /// The VMM's end (libkrun gets a duplicate of it).
    vmm: OwnedFd,
    /// passt's end.
    passt: OwnedFd,
}

impl WiredNet {
    /// A duplicate of the VMM's end, for `krun_add_net_unixstream`.
    pub(crate) fn vmm_end(&self) -> Result<OwnedFd, NetError> {
        self.vmm.try_clone().map_err(|source| NetError::Namespace {
            step: "duplicating passt's socket for the VMM",
            source,
        })
    }

    /// Starts the network: the namespace, passt (checked to answer over
    /// the VMM's end before libkrun reads it), the relays and DNS. Call it
    /// on the thread that enters the VM, right before it does.
    pub(crate) fn start(self) -> Result<(), NetError> {
        let plan = self.plan;
        let hosts = plan
            .publish
            .iter()
            .map(|&(host, guest)| {
                TcpListener::bind((Ipv4Addr::LOCALHOST, host)).map_err(|source| NetError::Publish {
                    host,
                    guest,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ns = namespace::Namespace::create(&plan.policy)?;
        let inner = inner_ports(&plan.policy.ports(), plan.publish.len());
        let forwards: Vec<(u16, u16)> = inner
            .iter()
            .zip(&plan.publish)
            .map(|(inner, (_, guest))| (*inner, *guest))
            .collect();
        passt::start(&plan.passt, &ns.fd, self.passt, &self.vmm, &forwards)?;
        drop(self.vmm);

        let policy = Arc::new(plan.policy);
        let slots = Arc::new(relay::Slots::default());
        let netns = Arc::new(ns.fd);
        for listener in ns.listeners {
            let (policy, slots) = (Arc::clone(&policy), Arc::clone(&slots));
            spawn("monocore-egress-accept", move || {
                relay::serve_egress(listener, policy, slots)
            })?;
        }
        for (listener, inner) in hosts.into_iter().zip(inner) {
            let (netns, slots) = (Arc::clone(&netns), Arc::clone(&slots));
            spawn("monocore-publish-accept", move || {
                relay::serve_publish(listener, netns, inner, slots)
            })?;
        }
        let dns = ns.dns;
        spawn("monocore-dns", move || dns::serve(dns, &policy))
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), NetError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|source| NetError::Namespace {
            step: "starting a relay thread",
            source,
        })
}

/// `count` ports from [`FIRST_INNER_PORT`] up that no egress listener
/// uses, for passt's forwards to published guest ports.
fn inner_ports(taken: &BTreeSet<u16>, count: usize) -> Vec<u16> {
    (FIRST_INNER_PORT..=u16::MAX)
        .filter(|p| !taken.contains(p))
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests;
