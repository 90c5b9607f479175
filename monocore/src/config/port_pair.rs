use std::{fmt, hash::Hash, str::FromStr};

use super::serde_str::serde_via_str;
use crate::error::MonocoreError;

/// A port mapping: a host port and the guest port it forwards to.
///
/// String form: `host:guest`, or a single port meaning the same port on both
/// sides. Ports are 1 to 65535; `8080:80:90` is rejected.
///
/// ```
/// use monocore::config::PortPair;
/// let pair: PortPair = "8080:80".parse()?;
/// assert_eq!((pair.get_host(), pair.get_guest()), (8080, 80));
/// assert_eq!("443".parse::<PortPair>()?.to_string(), "443:443");
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub enum PortPair {
    /// Different host and guest ports.
    Distinct {
        /// The port on the host.
        host: u16,
        /// The port in the guest.
        guest: u16,
    },
    /// The same port on both sides.
    Same(u16),
}

impl PortPair {
    /// The same port on both sides.
    pub fn with_same(port: u16) -> Self {
        Self::Same(port)
    }

    /// Different host and guest ports.
    pub fn with_distinct(host: u16, guest: u16) -> Self {
        Self::Distinct { host, guest }
    }

    /// The host side.
    pub fn get_host(&self) -> u16 {
        match self {
            Self::Distinct { host, .. } | Self::Same(host) => *host,
        }
    }

    /// The guest side.
    pub fn get_guest(&self) -> u16 {
        match self {
            Self::Distinct { guest, .. } | Self::Same(guest) => *guest,
        }
    }
}

impl PartialEq for PortPair {
    fn eq(&self, other: &Self) -> bool {
        (self.get_host(), self.get_guest()) == (other.get_host(), other.get_guest())
    }
}

impl Eq for PortPair {}

impl Hash for PortPair {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.get_host(), self.get_guest()).hash(state);
    }
}

impl FromStr for PortPair {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, guest) = monocore_rules::parse_port_pair(s)?;
        Ok(if host == guest {
            Self::Same(host)
        } else {
            Self::Distinct { host, guest }
        })
    }
}

/// Prints `host:guest`, the form libkrun's port map reads.
impl fmt::Display for PortPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.get_host(), self.get_guest())
    }
}

serde_via_str!(PortPair);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortPairErrorKind;

    #[test]
    fn parses_both_forms() {
        assert_eq!("8080".parse::<PortPair>().unwrap(), PortPair::Same(8080));
        assert_eq!("80:80".parse::<PortPair>().unwrap(), PortPair::Same(80));
        assert_eq!(
            "8080:80".parse::<PortPair>().unwrap(),
            PortPair::with_distinct(8080, 80)
        );
    }

    #[test]
    fn parse_errors_are_typed() {
        for (input, kind) in [
            ("", PortPairErrorKind::Empty),
            ("8080:80:90", PortPairErrorKind::TooManyParts),
            ("70000", PortPairErrorKind::InvalidPort("70000".into())),
            ("a:80", PortPairErrorKind::InvalidPort("a".into())),
            ("0", PortPairErrorKind::InvalidPort("0".into())),
        ] {
            match input.parse::<PortPair>() {
                Err(MonocoreError::InvalidPortPair(e)) => assert_eq!(e.kind, kind, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let pair = PortPair::with_distinct(8080, 80);
        assert_eq!(serde_json::to_string(&pair).unwrap(), "\"8080:80\"");
        assert_eq!(
            serde_json::from_str::<PortPair>("\"8080:80\"").unwrap(),
            pair
        );
    }
}
