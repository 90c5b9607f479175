//! The guest network's fixed addresses and the egress allow-list's entries.
//!
//! With networking on (`net`), the guest has one interface, `eth0`, at
//! [`GUEST_ADDR`]/[`GUEST_PREFIX`], whose gateway [`GATEWAY`] stands for the
//! host: a connection to `GATEWAY:PORT` reaches the host's `127.0.0.1:PORT`
//! when `127.0.0.1:PORT` is allowed, and the gateway also answers DNS.
//! [`HOST_ALIAS`] resolves to it. The guest subnet exists only between the
//! guest and its passt process: no packet of it reaches a host interface.
//!
//! An allow-list entry ([`EgressRule`]) is `HOST:PORT`: one TCP port of an
//! IPv4 address, of every address of an IPv4 network (`ADDR/PREFIX`), or of
//! the addresses a DNS name has on the host when the VM starts.
//!
//! ```
//! use monocore_rules::egress::{parse_egress_rule, EgressHost};
//! let rule = parse_egress_rule("127.0.0.1:8080")?;
//! assert_eq!((rule.host, rule.port), (EgressHost::Addr([127, 0, 0, 1].into()), 8080));
//! assert_eq!(parse_egress_rule("PyPI.org.:443")?.to_string(), "pypi.org:443");
//! assert!(parse_egress_rule("10.1.0.0/16").is_err()); // no port
//! # Ok::<(), monocore_rules::egress::EgressRuleError>(())
//! ```

use core::fmt;
use std::net::Ipv4Addr;

use crate::pair::{Excerpt, parse_decimal};

/// The guest's address on its `eth0`.
pub const GUEST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The guest subnet's prefix length.
pub const GUEST_PREFIX: u8 = 24;
/// The guest's gateway: the host's loopback and DNS, as the guest sees them.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The name of the host (the gateway) in the guest's DNS.
pub const HOST_ALIAS: &str = "host.monocore.internal";
/// The guest interface's MTU (passt's largest).
pub const GUEST_MTU: u32 = 65520;
/// The host loopback address an entry must name to reach the host itself.
pub const HOST_LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The longest DNS name an entry may hold (RFC 1035's 253 characters).
const MAX_NAME_LEN: usize = 253;
/// The longest label of a DNS name.
const MAX_LABEL_LEN: usize = 63;

/// What an entry allows connections to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EgressHost {
    /// One IPv4 address.
    Addr(Ipv4Addr),
    /// Every address of an IPv4 network: its first address and prefix
    /// length (host bits zero).
    Net(Ipv4Addr, u8),
    /// The IPv4 addresses of a DNS name, lower case, no final dot, as the
    /// host resolves it when the VM starts.
    Name(String),
}

/// One allow-list entry: TCP connections to `host` on `port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EgressRule {
    /// Where to.
    pub host: EgressHost,
    /// The TCP port, 1 to 65535.
    pub port: u16,
}

impl EgressRule {
    /// Whether a connection to `addr:port` is allowed by this entry (a name
    /// matches no address: its addresses are resolved by the runtime).
    pub fn allows(&self, addr: Ipv4Addr, port: u16) -> bool {
        port == self.port
            && match &self.host {
                EgressHost::Addr(a) => *a == addr,
                EgressHost::Net(net, prefix) => in_net(addr, *net, *prefix),
                EgressHost::Name(_) => false,
            }
    }
}

impl fmt::Display for EgressHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressHost::Addr(addr) => write!(f, "{addr}"),
            EgressHost::Net(net, prefix) => write!(f, "{net}/{prefix}"),
            EgressHost::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A string that is not an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allow-list entry {}: {kind}", Excerpt(input))]
pub struct EgressRuleError {
    /// The whole input.
    pub input: String,
    /// What is wrong with it.
    pub kind: EgressRuleErrorKind,
}

/// What is wrong with an allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressRuleErrorKind {
    /// Nothing was given.
    #[error("it is empty; expected `HOST:PORT`, `ADDR/PREFIX:PORT` or `NAME:PORT`")]
    Empty,
    /// No `:PORT`.
    #[error(
        "it names no port; expected `HOST:PORT`: each entry allows one TCP port (list a host once per port)"
    )]
    MissingPort,
    /// The port is not 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    InvalidPort(String),
    /// An IPv6 address.
    #[error("IPv6 is not supported: the guest network is IPv4 only")]
    Ipv6,
    /// A prefix length that is not 0 to 32.
    #[error("prefix length {0:?} is not a number from 0 to 32")]
    InvalidPrefix(String),
    /// A network whose address has host bits set.
    #[error("{addr}/{prefix} has host bits set; the network is {network}/{prefix}")]
    HostBitsSet {
        /// The address given.
        addr: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
        /// The network the prefix makes of it.
        network: Ipv4Addr,
    },
    /// Neither an IPv4 address nor a DNS name.
    #[error(
        "{0:?} is neither an IPv4 address nor a DNS name (letters, digits and `-` in dot-separated labels of 1 to 63, 253 in all)"
    )]
    InvalidHost(String),
    /// An address no connection can go to.
    #[error("{0} is not an address a connection can go to (unspecified, multicast or broadcast)")]
    NotADestination(Ipv4Addr),
    /// A host loopback address other than 127.0.0.1, or a network holding
    /// one.
    #[error(
        "{0} reaches into the host's loopback range 127.0.0.0/8: the guest reaches the host's loopback at 127.0.0.1 only (list `127.0.0.1:PORT` on its own)"
    )]
    Loopback(String),
    /// An address of the guest's own subnet, which stands for the guest,
    /// its gateway and DNS.
    #[error(
        "{0} overlaps the guest's own subnet 10.0.2.0/24 (the guest, its gateway and DNS), which no connection can leave through"
    )]
    GuestSubnet(String),
}

/// Parses an allow-list entry: `ADDR:PORT`, `ADDR/PREFIX:PORT` or
/// `NAME:PORT` (a name is made lower case and loses a final dot).
pub fn parse_egress_rule(s: &str) -> Result<EgressRule, EgressRuleError> {
    parse(s).map_err(|kind| EgressRuleError {
        input: s.to_owned(),
        kind,
    })
}

fn parse(s: &str) -> Result<EgressRule, EgressRuleErrorKind> {
    if s.is_empty() {
        return Err(EgressRuleErrorKind::Empty);
    }
    if s.starts_with('[') || s.matches(':').count() > 1 {
        return Err(EgressRuleErrorKind::Ipv6);
    }
    let Some((host, port)) = s.split_once(':') else {
        return Err(EgressRuleErrorKind::MissingPort);
    };
    let port = match parse_decimal::<u16>(port) {
        Some(port) if port != 0 => port,
        _ => return Err(EgressRuleErrorKind::InvalidPort(port.to_owned())),
    };
    let host = parse_host(host)?;
    Ok(EgressRule { host, port })
}

fn parse_host(host: &str) -> Result<EgressHost, EgressRuleErrorKind> {
    if let Some((addr, prefix)) = host.split_once('/') {
        let addr = parse_addr(addr).ok_or_else(|| invalid_host(host))?;
        let prefix = match parse_decimal::<u8>(prefix) {
            Some(prefix) if prefix <= 32 => prefix,
            _ => return Err(EgressRuleErrorKind::InvalidPrefix(prefix.to_owned())),
        };
        let network = Ipv4Addr::from(u32::from(addr) & netmask(prefix));
        if network != addr {
            return Err(EgressRuleErrorKind::HostBitsSet {
                addr,
                prefix,
                network,
            });
        }
        check_destination(network, prefix, host)?;
        return Ok(EgressHost::Net(network, prefix));
    }
    if let Some(addr) = parse_addr(host) {
        check_destination(addr, 32, host)?;
        return Ok(EgressHost::Addr(addr));
    }
    check_name(host).map(EgressHost::Name)
}

/// An IPv4 address in dotted-quad form (four decimal numbers, nothing else).
fn parse_addr(s: &str) -> Option<Ipv4Addr> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    s.parse().ok()
}

fn invalid_host(host: &str) -> EgressRuleErrorKind {
    EgressRuleErrorKind::InvalidHost(host.to_owned())
}

/// The netmask of a prefix length (0 to 32), as a `u32` (`24` is
/// `0xffff_ff00`).
pub fn netmask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// Whether `addr` is in `net/prefix`.
pub fn in_net(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    u32::from(addr) & netmask(prefix) == u32::from(net)
}

/// Whether two networks share an address.
fn overlaps(a: Ipv4Addr, a_prefix: u8, b: Ipv4Addr, b_prefix: u8) -> bool {
    let prefix = a_prefix.min(b_prefix);
    in_net(a, Ipv4Addr::from(u32::from(b) & netmask(prefix)), prefix)
        || in_net(b, Ipv4Addr::from(u32::from(a) & netmask(prefix)), prefix)
}

/// The rules on what an address or network may be, written in an entry or
/// resolved from a name (`shown` names it in the error): a destination
/// (not unspecified, multicast or broadcast), not the host's loopback but
/// 127.0.0.1 alone, not the guest's subnet.
///
/// ```
/// use monocore_rules::egress::check_destination;
/// assert!(check_destination([127, 0, 0, 1].into(), 32, "localhost").is_ok());
/// assert!(check_destination([127, 0, 1, 1].into(), 32, "myhost").is_err());
/// assert!(check_destination([224, 0, 0, 1].into(), 32, "mcast").is_err());
/// ```
pub fn check_destination(
    net: Ipv4Addr,
    prefix: u8,
    shown: &str,
) -> Result<(), EgressRuleErrorKind> {
    if prefix == 32 && (net.is_unspecified() || net.is_multicast() || net.is_broadcast()) {
        return Err(EgressRuleErrorKind::NotADestination(net));
    }
    let guest_net = Ipv4Addr::from(u32::from(GUEST_ADDR) & netmask(GUEST_PREFIX));
    if overlaps(net, prefix, guest_net, GUEST_PREFIX) {
        return Err(EgressRuleErrorKind::GuestSubnet(shown.to_owned()));
    }
    let loopback_only = prefix == 32 && net == HOST_LOOPBACK;
    if overlaps(net, prefix, Ipv4Addr::new(127, 0, 0, 0), 8) && !loopback_only {
        return Err(EgressRuleErrorKind::Loopback(shown.to_owned()));
    }
    Ok(())
}

/// A DNS name: dot-separated labels of letters, digits and `-` (not first
/// or last), not all digits in its last label; made lower case, one final
/// dot dropped.
fn check_name(host: &str) -> Result<String, EgressRuleErrorKind> {
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || last_numeric
        || !name.split('.').all(label_ok)
    {
        return Err(invalid_host(host));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
