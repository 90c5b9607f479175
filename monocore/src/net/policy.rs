//! The allow-list made concrete: names resolved to addresses (once, when
//! the VM starts), and what the namespace passt runs in must hold for it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv4Addr, SocketAddr, ToSocketAddrs},
};

use monocore_rules::egress::{EgressHost, EgressRule, GATEWAY, HOST_ALIAS, HOST_LOOPBACK};

use super::NetError;

/// One allowed destination: every address of `net/prefix`, on `port`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct Allowed {
    pub(crate) net: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) port: u16,
}

/// A listening socket the namespace needs: `addr:port`, where `addr` is
/// unspecified when a network entry needs every local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Listen {
    pub(crate) addr: Ipv4Addr,
    pub(crate) port: u16,
}

/// The resolved allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Policy {
    allowed: Vec<Allowed>,
    /// What the guest's DNS answers: each allowed name (and the host's
    /// alias) with its addresses as the guest must use them (the host's
    /// loopback becomes the gateway).
    names: BTreeMap<String, Vec<Ipv4Addr>>,
}

/// How a name is resolved: the host's resolver, or a stand-in in tests.
pub(crate) type Resolver<'a> = &'a dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>;

/// The host's resolver (`getaddrinfo`).
pub(crate) fn host_resolver(name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok((name, port).to_socket_addrs()?.collect())
}

impl Policy {
    /// Resolves `rules`' names with `resolve` and checks every address the
    /// way a written address is checked.
    pub(crate) fn resolve<'r>(
        rules: impl IntoIterator<Item = &'r EgressRule>,
        resolve: Resolver<'_>,
    ) -> Result<Self, NetError> {
        let mut policy = Policy::default();
        policy.names.insert(HOST_ALIAS.to_owned(), vec![GATEWAY]);
        let mut allowed = BTreeSet::new();
        for rule in rules {
            let port = rule.port;
            match &rule.host {
                EgressHost::Addr(net) => {
                    allowed.insert(Allowed {
                        net: *net,
                        prefix: 32,
                        port,
                    });
                }
                EgressHost::Net(net, prefix) => {
                    allowed.insert(Allowed {
                        net: *net,
                        prefix: *prefix,
                        port,
                    });
                }
                EgressHost::Name(name) => {
                    let addrs = resolve_name(name, port, resolve)?;
                    let seen: Vec<Ipv4Addr> = addrs
                        .iter()
                        .map(|a| if *a == HOST_LOOPBACK { GATEWAY } else { *a })
                        .collect();
                    let entry = policy.names.entry(name.clone()).or_default();
                    for addr in seen {
                        if !entry.contains(&addr) {
                            entry.push(addr);
                        }
                    }
                    for net in addrs {
                        allowed.insert(Allowed {
                            net,
                            prefix: 32,
                            port,
                        });
                    }
                }
            }
        }
        policy.allowed = allowed.into_iter().collect();
        Ok(policy)
    }

    /// Whether a connection that reached passt's namespace at `addr:port`
    /// may go on to the host's `addr:port`.
    pub(crate) fn allows(&self, addr: Ipv4Addr, port: u16) -> bool {
        self.allowed
            .iter()
            .any(|a| a.port == port && monocore_rules::egress::in_net(addr, a.net, a.prefix))
    }

    /// The guest-visible addresses of `name` (lower case, no final dot),
    /// if the guest's DNS answers it.
    pub(crate) fn lookup(&self, name: &str) -> Option<&[Ipv4Addr]> {
        self.names.get(name).map(Vec::as_slice)
    }

    /// The addresses (with prefix) the namespace's loopback must hold
    /// besides 127.0.0.0/8, so that passt's connections to them stay in the
    /// namespace and reach a relay.
    pub(crate) fn local_nets(&self) -> Vec<(Ipv4Addr, u8)> {
        let set: BTreeSet<(Ipv4Addr, u8)> = self
            .allowed
            .iter()
            .filter(|a| a.net != HOST_LOOPBACK)
            .map(|a| (a.net, a.prefix))
            .collect();
        set.into_iter().collect()
    }

    /// The listening sockets the namespace needs: per port, one on every
    /// address when a network entry has that port (Linux refuses a
    /// specific listener beside a wildcard one), else one per address.
    pub(crate) fn listeners(&self) -> Vec<Listen> {
        let mut out = BTreeSet::new();
        for a in &self.allowed {
            let wildcard = self
                .allowed
                .iter()
                .any(|b| b.port == a.port && b.prefix < 32);
            let addr = if wildcard {
                Ipv4Addr::UNSPECIFIED
            } else {
                a.net
            };
            out.insert(Listen { addr, port: a.port });
        }
        out.into_iter().collect()
    }

    /// The ports some listener uses.
    pub(crate) fn ports(&self) -> BTreeSet<u16> {
        self.allowed.iter().map(|a| a.port).collect()
    }
}

/// A name's IPv4 addresses, each checked as a written address would be.
fn resolve_name(name: &str, port: u16, resolve: Resolver<'_>) -> Result<Vec<Ipv4Addr>, NetError> {
    let found = resolve(name, port).map_err(|e| NetError::Unresolved {
        name: name.to_owned(),
        source: Some(e),
    })?;
    let mut addrs: Vec<Ipv4Addr> = Vec::new();
    for addr in found {
        if let SocketAddr::V4(v4) = addr
            && !addrs.contains(v4.ip())
        {
            addrs.push(*v4.ip());
        }
    }
    if addrs.is_empty() {
        return Err(NetError::Unresolved {
            name: name.to_owned(),
            source: None,
        });
    }
    for addr in &addrs {
        if let Err(kind) = monocore_rules::egress::check_destination(*addr, 32, name) {
            return Err(NetError::ResolvedAddress {
                name: name.to_owned(),
                addr: *addr,
                kind,
            });
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use monocore_rules::egress::parse_egress_rule;

    fn fake(name: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let ips: Vec<std::net::IpAddr> = match name {
            "localhost" => vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
            "two.example" => vec![[192, 0, 2, 1].into(), [192, 0, 2, 2].into()],
            "v6only.example" => vec![std::net::Ipv6Addr::LOCALHOST.into()],
            "inner.example" => vec![[10, 0, 2, 9].into()],
            "loop.example" => vec![[127, 0, 1, 1].into()],
            _ => return Err(std::io::Error::other("no such name")),
        };
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    fn policy(entries: &[&str]) -> Result<Policy, NetError> {
        let rules: Vec<EgressRule> = entries
            .iter()
            .map(|e| parse_egress_rule(e).unwrap())
            .collect();
        Policy::resolve(&rules, &fake)
    }

    #[test]
    fn names_resolve_to_their_ipv4_addresses_and_loopback_becomes_the_gateway() {
        let p = policy(&["localhost:8080", "two.example:443"]).unwrap();
        assert_eq!(p.lookup("localhost"), Some(&[GATEWAY][..]));
        assert_eq!(
            p.lookup("two.example"),
            Some(&[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)][..])
        );
        assert_eq!(p.lookup(HOST_ALIAS), Some(&[GATEWAY][..]));
        assert_eq!(p.lookup("other.example"), None);
        assert!(p.allows(HOST_LOOPBACK, 8080));
        assert!(!p.allows(HOST_LOOPBACK, 8081));
        assert!(p.allows(Ipv4Addr::new(192, 0, 2, 2), 443));
        assert!(!p.allows(Ipv4Addr::new(192, 0, 2, 2), 8080));
    }

    #[test]
    fn a_name_without_a_usable_address_is_an_error_naming_it() {
        assert!(
            matches!(policy(&["v6only.example:80"]), Err(NetError::Unresolved { name, source: None }) if name == "v6only.example")
        );
        assert!(matches!(
            policy(&["nowhere.example:80"]),
            Err(NetError::Unresolved {
                source: Some(_),
                ..
            })
        ));
        assert!(
            matches!(policy(&["inner.example:80"]), Err(NetError::ResolvedAddress { addr, .. }) if addr == Ipv4Addr::new(10, 0, 2, 9))
        );
        assert!(matches!(
            policy(&["loop.example:80"]),
            Err(NetError::ResolvedAddress { .. })
        ));
    }

    #[test]
    fn listeners_are_per_address_unless_a_network_shares_the_port() {
        let p = policy(&[
            "127.0.0.1:80",
            "192.0.2.7:80",
            "198.51.100.0/24:443",
            "192.0.2.7:443",
        ])
        .unwrap();
        let l = |a: [u8; 4], port| Listen {
            addr: a.into(),
            port,
        };
        assert_eq!(
            p.listeners(),
            [
                l([0, 0, 0, 0], 443),
                l([127, 0, 0, 1], 80),
                l([192, 0, 2, 7], 80)
            ]
        );
        assert_eq!(
            p.local_nets(),
            [
                (Ipv4Addr::new(192, 0, 2, 7), 32),
                (Ipv4Addr::new(198, 51, 100, 0), 24)
            ]
        );
        assert!(p.allows(Ipv4Addr::new(198, 51, 100, 200), 443));
        assert!(!p.allows(HOST_LOOPBACK, 443));
    }
}
