use std::{fmt, hash::Hash, str::FromStr};

use typed_path::Utf8UnixPathBuf;

use super::serde_str::serde_via_str;
use crate::error::MonocoreError;

/// A virtio-fs mapped directory: a host directory and where the guest sees it.
///
/// String form: `host:guest`, or a single path meaning the same path on both
/// sides. Paths may not contain `:` or NUL.
///
/// ```
/// use monocore::config::PathPair;
/// let pair: PathPair = "/srv/data:/data".parse()?;
/// assert_eq!(pair.get_host().as_str(), "/srv/data");
/// assert_eq!(pair.get_guest().as_str(), "/data");
/// assert_eq!(pair.to_string().parse::<PathPair>()?, pair);
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
///
/// Two pairs are equal when their host and guest paths are equal, whichever
/// variant holds them.
#[derive(Debug, Clone)]
pub enum PathPair {
    /// Different host and guest paths.
    Distinct {
        /// The path on the host.
        host: Utf8UnixPathBuf,
        /// The path in the guest.
        guest: Utf8UnixPathBuf,
    },
    /// The same path on both sides.
    Same(Utf8UnixPathBuf),
}

impl PathPair {
    /// The same path on both sides.
    pub fn with_same(path: Utf8UnixPathBuf) -> Self {
        Self::Same(path)
    }

    /// Different host and guest paths.
    pub fn with_distinct(host: Utf8UnixPathBuf, guest: Utf8UnixPathBuf) -> Self {
        Self::Distinct { host, guest }
    }

    /// The host side.
    pub fn get_host(&self) -> &Utf8UnixPathBuf {
        match self {
            Self::Distinct { host, .. } | Self::Same(host) => host,
        }
    }

    /// The guest side.
    pub fn get_guest(&self) -> &Utf8UnixPathBuf {
        match self {
            Self::Distinct { guest, .. } | Self::Same(guest) => guest,
        }
    }
}

impl PartialEq for PathPair {
    fn eq(&self, other: &Self) -> bool {
        self.get_host() == other.get_host() && self.get_guest() == other.get_guest()
    }
}

impl Eq for PathPair {}

impl Hash for PathPair {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.get_host().as_str().hash(state);
        self.get_guest().as_str().hash(state);
    }
}

impl FromStr for PathPair {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, guest) = monocore_rules::parse_path_pair(s)?;
        Ok(if host == guest {
            Self::Same(host.into())
        } else {
            Self::Distinct {
                host: host.into(),
                guest: guest.into(),
            }
        })
    }
}

impl fmt::Display for PathPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.get_host(), self.get_guest())
    }
}

serde_via_str!(PathPair);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathPairErrorKind;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            "/data".parse::<PathPair>().unwrap(),
            PathPair::Same("/data".into())
        );
        assert_eq!(
            "/data:/data".parse::<PathPair>().unwrap(),
            PathPair::Same("/data".into())
        );
        assert_eq!(
            "/host/data:/container/data".parse::<PathPair>().unwrap(),
            PathPair::with_distinct("/host/data".into(), "/container/data".into())
        );
    }

    #[test]
    fn parse_errors_are_typed_and_name_the_input() {
        for (input, kind) in [
            ("", PathPairErrorKind::Empty),
            (":", PathPairErrorKind::EmptyHost),
            ("/data:", PathPairErrorKind::EmptyGuest),
            ("/a:/b:/c", PathPairErrorKind::TooManyColons),
        ] {
            match input.parse::<PathPair>() {
                Err(MonocoreError::InvalidPathPair(e)) => {
                    assert_eq!(e.kind, kind, "{input:?}");
                    assert_eq!(e.input, input);
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn equality_ignores_the_variant() {
        assert_eq!(
            PathPair::with_distinct("/a".into(), "/a".into()),
            PathPair::with_same("/a".into())
        );
        assert_eq!(PathPair::with_same("/a".into()).to_string(), "/a:/a");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let pair: PathPair = "/h:/g".parse().unwrap();
        assert_eq!(serde_json::to_string(&pair).unwrap(), "\"/h:/g\"");
        assert_eq!(serde_json::from_str::<PathPair>("\"/h:/g\"").unwrap(), pair);
        assert!(serde_json::from_str::<PathPair>("\"/h:\"").is_err());
    }
}
