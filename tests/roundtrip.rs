//! Property tests: every pair type's `Display` → `FromStr` round-trips, and
//! parsing arbitrary input never panics.

use monocore::config::{EnvPair, PathPair, PortPair};
use monocore::vm::{LinuxRlimit, LinuxRlimitResource, LogLevel};
use proptest::prelude::*;

/// A path segment with no `:` and no NUL (the characters the string form
/// cannot carry).
fn path() -> impl Strategy<Value = String> {
    "/?[^:\0]{1,40}"
}

fn port() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn path_pair_round_trips(host in path(), guest in path(), same in any::<bool>()) {
        let pair = if same {
            PathPair::with_same(host.as_str().into())
        } else {
            PathPair::with_distinct(host.as_str().into(), guest.as_str().into())
        };
        let parsed: PathPair = pair.to_string().parse().unwrap();
        prop_assert_eq!(&parsed, &pair);
        prop_assert_eq!(parsed.get_host().as_str(), pair.get_host().as_str());
        prop_assert_eq!(parsed.get_guest().as_str(), pair.get_guest().as_str());
        let json = serde_json::to_string(&pair).unwrap();
        prop_assert_eq!(serde_json::from_str::<PathPair>(&json).unwrap(), pair);
    }

    #[test]
    fn port_pair_round_trips(host in port(), guest in port()) {
        let pair = PortPair::with_distinct(host, guest);
        let parsed: PortPair = pair.to_string().parse().unwrap();
        prop_assert_eq!(parsed, pair);
        prop_assert_eq!((parsed.get_host(), parsed.get_guest()), (host, guest));
    }

    #[test]
    fn env_pair_round_trips(name in "[^=\0]{1,20}", value in "[^\0]{0,40}") {
        let pair = EnvPair::new(name.clone(), value.clone());
        let parsed: EnvPair = pair.to_string().parse().unwrap();
        prop_assert_eq!(parsed.get_name(), &name);
        prop_assert_eq!(parsed.get_value(), &value);
    }

    #[test]
    fn rlimit_round_trips(resource in 0u32..16, a in any::<u64>(), b in any::<u64>()) {
        let (soft, hard) = (a.min(b), a.max(b));
        let limit = LinuxRlimit::new(LinuxRlimitResource::try_from(resource).unwrap(), soft, hard);
        let parsed: LinuxRlimit = limit.to_string().parse().unwrap();
        prop_assert_eq!(&parsed, &limit);
        // The named form parses to the same value.
        let named = format!("{}={soft}:{hard}", limit.get_resource());
        prop_assert_eq!(named.parse::<LinuxRlimit>().unwrap(), limit);
    }

    #[test]
    fn rlimit_soft_above_hard_never_parses(resource in 0u32..16, a in any::<u64>(), b in any::<u64>()) {
        prop_assume!(a != b);
        let (soft, hard) = (a.max(b), a.min(b));
        let input = format!("{resource}={soft}:{hard}");
        prop_assert!(input.parse::<LinuxRlimit>().is_err());
    }

    #[test]
    fn log_level_round_trips(n in 0u32..6) {
        let level = LogLevel::try_from(n).unwrap();
        prop_assert_eq!(level.to_string().parse::<LogLevel>().unwrap(), level);
    }

    /// Arbitrary input never panics, and whatever parses prints back to a
    /// string that parses to the same value.
    #[test]
    fn arbitrary_input_parses_or_errors_and_successes_round_trip(s in "\\PC{0,24}|[0-9:=/]{0,12}") {
        if let Ok(p) = s.parse::<PathPair>() {
            prop_assert_eq!(p.to_string().parse::<PathPair>().unwrap(), p);
        }
        if let Ok(p) = s.parse::<PortPair>() {
            prop_assert_eq!(p.to_string().parse::<PortPair>().unwrap(), p);
        }
        if let Ok(p) = s.parse::<EnvPair>() {
            prop_assert_eq!(p.to_string().parse::<EnvPair>().unwrap(), p);
        }
        if let Ok(p) = s.parse::<LinuxRlimit>() {
            prop_assert_eq!(p.to_string().parse::<LinuxRlimit>().unwrap(), p);
        }
    }
}
