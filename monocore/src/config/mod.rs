//! Configuration value types: the string-form pair types and the defaults.
//!
//! Each pair type parses from its string form with [`FromStr`](std::str::FromStr)
//! and prints back to it with [`Display`](std::fmt::Display); the two
//! round-trip. Serde serializes each through that string form.

mod defaults;
mod env_pair;
pub mod file;
mod path_pair;
mod port_pair;
pub(crate) mod serde_str;

pub use defaults::*;
pub use env_pair::EnvPair;
pub use monocore_rules::limits;
pub use monocore_rules::{
    EnvPairError, EnvPairErrorKind, GuestPathError, GuestStringError, HostPathError, PathPairError,
    PathPairErrorKind, PortPairError, PortPairErrorKind, RangeError, RlimitError, RlimitErrorKind,
};
pub use path_pair::PathPair;
pub use port_pair::PortPair;
