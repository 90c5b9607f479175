use std::{fmt, str::FromStr};

use monocore_rules::egress::{EgressRule, parse_egress_rule};

use super::serde_str::serde_via_str;
use crate::error::MonocoreError;

/// One entry of the egress allow-list ([`MicroVmConfig::allow`]): TCP
/// connections to one port of an IPv4 address, of an IPv4 network, or of a
/// DNS name's addresses (resolved on the host when the VM starts).
///
/// String form: `ADDR:PORT`, `ADDR/PREFIX:PORT` or `NAME:PORT`. The host's
/// own loopback is `127.0.0.1:PORT`, which the guest reaches at
/// `host.monocore.internal:PORT`.
///
/// ```
/// use monocore::config::AllowEntry;
/// let entry: AllowEntry = "127.0.0.1:8080".parse()?;
/// assert_eq!(entry.rule().port, 8080);
/// assert_eq!("Example.org.:443".parse::<AllowEntry>()?.to_string(), "example.org:443");
/// assert!("[::1]:80".parse::<AllowEntry>().is_err()); // the guest network is IPv4 only
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
///
/// [`MicroVmConfig::allow`]: crate::vm::MicroVmConfig::allow
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowEntry(EgressRule);

impl AllowEntry {
    /// The entry's rule.
    pub fn rule(&self) -> &EgressRule {
        &self.0
    }
}

impl From<EgressRule> for AllowEntry {
    fn from(rule: EgressRule) -> Self {
        Self(rule)
    }
}

impl FromStr for AllowEntry {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(parse_egress_rule(s)?))
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

serde_via_str!(AllowEntry);
