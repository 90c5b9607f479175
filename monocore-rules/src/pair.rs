//! String forms of the pair types: `host:guest` paths, `host:guest` ports and
//! `NAME=value` environment entries.

use core::fmt;

use crate::limits::{MAX_PATH_LEN, MAX_STRING_LEN};

/// At most this many bytes of an offending input are echoed in an error
/// message; the error value itself keeps the whole input.
const ECHO_LIMIT: usize = 200;

/// Displays an input, cut to [`ECHO_LIMIT`] bytes (on a char boundary).
pub(crate) struct Excerpt<'a>(pub(crate) &'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= ECHO_LIMIT {
            return write!(f, "{:?}", self.0);
        }
        let mut end = ECHO_LIMIT;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        let head = self.0.get(..end).unwrap_or_default();
        write!(f, "{head:?}… ({} bytes)", self.0.len())
    }
}

/// Parses a decimal number made of ASCII digits only: no sign, no spaces.
pub(crate) fn parse_decimal<T: core::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

macro_rules! pair_error {
    ($(#[$meta:meta])* $name:ident, $kind:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("invalid {} {}: {kind}", $what, Excerpt(input))]
        pub struct $name {
            /// The whole input that failed to parse.
            pub input: String,
            /// What was wrong with it.
            pub kind: $kind,
        }

        impl $name {
            fn new(input: &str, kind: $kind) -> Self {
                Self { input: input.to_owned(), kind }
            }
        }
    };
}

pair_error!(
    /// A string that is not a valid `host:guest` path pair.
    PathPairError, PathPairErrorKind, "path pair"
);
pair_error!(
    /// A string that is not a valid `host:guest` port pair.
    PortPairError, PortPairErrorKind, "port pair"
);
pair_error!(
    /// A string that is not a valid `NAME=value` environment entry.
    EnvPairError, EnvPairErrorKind, "environment variable"
);

/// What was wrong with a path pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathPairErrorKind {
    /// Nothing was given.
    #[error("it is empty; expected `host:guest` or a single path")]
    Empty,
    /// More than one `:`.
    #[error("expected `host:guest` with one `:`; paths may not contain `:`")]
    TooManyColons,
    /// Nothing before the `:`.
    #[error("the host path before `:` is empty")]
    EmptyHost,
    /// Nothing after the `:`.
    #[error("the guest path after `:` is empty")]
    EmptyGuest,
    /// A NUL byte, which no path can hold.
    #[error("it contains a NUL byte")]
    ContainsNul,
    /// A path longer than [`MAX_PATH_LEN`].
    #[error("a path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

/// What was wrong with a port pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortPairErrorKind {
    /// Nothing was given.
    #[error("it is empty; expected `host:guest` or a single port")]
    Empty,
    /// More than one `:` (such as `8080:80:90`).
    #[error("expected `host:guest` with one `:`")]
    TooManyParts,
    /// A part that is not a number from 1 to 65535.
    #[error("{} is not a port number from 1 to 65535", Excerpt(.0))]
    InvalidPort(String),
}

/// What was wrong with an environment entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvPairErrorKind {
    /// No `=` separates name and value.
    #[error("expected `NAME=value`, found no `=`")]
    MissingEquals,
    /// Nothing before the `=`.
    #[error("the name before `=` is empty")]
    EmptyName,
    /// A NUL byte, which the guest's environment cannot hold.
    #[error("it contains a NUL byte")]
    ContainsNul,
    /// Longer than [`MAX_STRING_LEN`].
    #[error("it is longer than {MAX_STRING_LEN} bytes")]
    TooLong,
    /// A name (given apart from its value) that holds `=`.
    #[error("a name cannot hold `=`")]
    NameHoldsEquals,
}

/// Parses `host:guest`, or a single path meaning the same path on both sides.
/// Returns `(host, guest)`; the paths are not normalized here.
///
/// ```
/// use monocore_rules::parse_path_pair;
/// assert_eq!(parse_path_pair("/srv/data:/data").unwrap(), ("/srv/data", "/data"));
/// assert_eq!(parse_path_pair("/data").unwrap(), ("/data", "/data"));
/// assert!(parse_path_pair("/a:/b:/c").is_err());
/// ```
pub fn parse_path_pair(s: &str) -> Result<(&str, &str), PathPairError> {
    let err = |kind| PathPairError::new(s, kind);
    if s.is_empty() {
        return Err(err(PathPairErrorKind::Empty));
    }
    if s.contains('\0') {
        return Err(err(PathPairErrorKind::ContainsNul));
    }
    let (host, guest) = match s.split_once(':') {
        None => (s, s),
        Some((_, guest)) if guest.contains(':') => {
            return Err(err(PathPairErrorKind::TooManyColons));
        }
        Some(("", _)) => return Err(err(PathPairErrorKind::EmptyHost)),
        Some((_, "")) => return Err(err(PathPairErrorKind::EmptyGuest)),
        Some(pair) => pair,
    };
    if host.len() > MAX_PATH_LEN || guest.len() > MAX_PATH_LEN {
        return Err(err(PathPairErrorKind::TooLong));
    }
    Ok((host, guest))
}

/// Checks that a path pair given as two parts (`PathPair::with_distinct`)
/// can be written in the `host:guest` string form: neither part holds a `:`.
///
/// The string form is how a pair is printed, parsed and serialized (the VM
/// helper receives its config through it), so a pair it cannot carry would
/// pass validation and then fail to reach the VM.
///
/// ```
/// use monocore_rules::check_path_pair_parts;
/// assert!(check_path_pair_parts("/srv/data", "/data").is_ok());
/// assert!(check_path_pair_parts("/srv/a:b", "/data").is_err());
/// assert!(check_path_pair_parts("/srv/data", "/da:ta").is_err());
/// ```
pub fn check_path_pair_parts(host: &str, guest: &str) -> Result<(), PathPairErrorKind> {
    if host.contains(':') || guest.contains(':') {
        return Err(PathPairErrorKind::TooManyColons);
    }
    Ok(())
}

/// Parses `host:guest`, or a single port meaning the same port on both sides.
///
/// ```
/// use monocore_rules::parse_port_pair;
/// assert_eq!(parse_port_pair("8080:80").unwrap(), (8080, 80));
/// assert_eq!(parse_port_pair("443").unwrap(), (443, 443));
/// assert!(parse_port_pair("8080:80:90").is_err());
/// assert!(parse_port_pair("0").is_err());
/// ```
pub fn parse_port_pair(s: &str) -> Result<(u16, u16), PortPairError> {
    let err = |kind| PortPairError::new(s, kind);
    if s.is_empty() {
        return Err(err(PortPairErrorKind::Empty));
    }
    let port = |part: &str| match parse_decimal::<u16>(part) {
        Some(p) if p != 0 => Ok(p),
        _ => Err(err(PortPairErrorKind::InvalidPort(part.to_owned()))),
    };
    match s.split_once(':') {
        None => port(s).map(|p| (p, p)),
        Some((_, guest)) if guest.contains(':') => Err(err(PortPairErrorKind::TooManyParts)),
        Some((host, guest)) => Ok((port(host)?, port(guest)?)),
    }
}

/// Parses `NAME=value`. The name is non-empty and holds no `=`; the value may
/// be empty and may hold `=`. Neither may hold a NUL byte.
///
/// ```
/// use monocore_rules::parse_env_pair;
/// assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A", "b=c"));
/// assert_eq!(parse_env_pair("EMPTY=").unwrap(), ("EMPTY", ""));
/// assert!(parse_env_pair("=x").is_err());
/// ```
pub fn parse_env_pair(s: &str) -> Result<(&str, &str), EnvPairError> {
    let err = |kind| EnvPairError::new(s, kind);
    if s.len() > MAX_STRING_LEN {
        return Err(err(EnvPairErrorKind::TooLong));
    }
    if s.contains('\0') {
        return Err(err(EnvPairErrorKind::ContainsNul));
    }
    match s.split_once('=') {
        None => Err(err(EnvPairErrorKind::MissingEquals)),
        Some(("", _)) => Err(err(EnvPairErrorKind::EmptyName)),
        Some(pair) => Ok(pair),
    }
}

/// Checks an environment variable name on its own (as `EnvPair::new` takes it).
pub fn check_env_name(name: &str) -> Result<(), EnvPairErrorKind> {
    if name.is_empty() {
        Err(EnvPairErrorKind::EmptyName)
    } else if name.contains('\0') {
        Err(EnvPairErrorKind::ContainsNul)
    } else if name.contains('=') {
        Err(EnvPairErrorKind::NameHoldsEquals)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_kind(s: &str) -> PathPairErrorKind {
        parse_path_pair(s).unwrap_err().kind
    }
    fn port_kind(s: &str) -> PortPairErrorKind {
        parse_port_pair(s).unwrap_err().kind
    }
    fn env_kind(s: &str) -> EnvPairErrorKind {
        parse_env_pair(s).unwrap_err().kind
    }

    #[test]
    fn path_pair_forms() {
        assert_eq!(parse_path_pair("/h:/g").unwrap(), ("/h", "/g"));
        assert_eq!(parse_path_pair("/same").unwrap(), ("/same", "/same"));
        assert_eq!(parse_path_pair("rel:/g").unwrap(), ("rel", "/g"));
    }

    #[test]
    fn path_pair_errors() {
        assert_eq!(path_kind(""), PathPairErrorKind::Empty);
        assert_eq!(path_kind(":"), PathPairErrorKind::EmptyHost);
        assert_eq!(path_kind(":/g"), PathPairErrorKind::EmptyHost);
        assert_eq!(path_kind("/h:"), PathPairErrorKind::EmptyGuest);
        assert_eq!(path_kind("/a:/b:/c"), PathPairErrorKind::TooManyColons);
        assert_eq!(path_kind("/a\0:/b"), PathPairErrorKind::ContainsNul);
        let long = format!("/{}:/g", "x".repeat(MAX_PATH_LEN));
        assert_eq!(path_kind(&long), PathPairErrorKind::TooLong);
    }

    #[test]
    fn parts_with_a_colon_cannot_form_a_pair() {
        assert_eq!(check_path_pair_parts("/h", "/g"), Ok(()));
        assert_eq!(
            check_path_pair_parts("/h:x", "/g"),
            Err(PathPairErrorKind::TooManyColons)
        );
        assert_eq!(
            check_path_pair_parts("/h", "/g:x"),
            Err(PathPairErrorKind::TooManyColons)
        );
        // Whatever passes it prints to a string that parses back.
        let (host, guest) = ("/h x", "/g.y");
        check_path_pair_parts(host, guest).unwrap();
        assert_eq!(
            parse_path_pair(&format!("{host}:{guest}")),
            Ok((host, guest))
        );
    }

    #[test]
    fn port_pair_forms_and_errors() {
        assert_eq!(parse_port_pair("8080:80").unwrap(), (8080, 80));
        assert_eq!(parse_port_pair("65535").unwrap(), (65535, 65535));
        assert_eq!(port_kind(""), PortPairErrorKind::Empty);
        assert_eq!(port_kind("8080:80:90"), PortPairErrorKind::TooManyParts);
        assert_eq!(
            port_kind("65536"),
            PortPairErrorKind::InvalidPort("65536".into())
        );
        assert_eq!(
            port_kind("0:80"),
            PortPairErrorKind::InvalidPort("0".into())
        );
        assert_eq!(
            port_kind("+80"),
            PortPairErrorKind::InvalidPort("+80".into())
        );
        assert_eq!(
            port_kind(" 80"),
            PortPairErrorKind::InvalidPort(" 80".into())
        );
        assert_eq!(port_kind("80:"), PortPairErrorKind::InvalidPort("".into()));
        assert_eq!(
            port_kind("http"),
            PortPairErrorKind::InvalidPort("http".into())
        );
    }

    #[test]
    fn env_pair_forms_and_errors() {
        assert_eq!(parse_env_pair("K=V").unwrap(), ("K", "V"));
        assert_eq!(env_kind("K"), EnvPairErrorKind::MissingEquals);
        assert_eq!(env_kind("=V"), EnvPairErrorKind::EmptyName);
        assert_eq!(env_kind("K=\0"), EnvPairErrorKind::ContainsNul);
        assert_eq!(
            check_env_name("A=B"),
            Err(EnvPairErrorKind::NameHoldsEquals)
        );
        assert_eq!(check_env_name("OK"), Ok(()));
    }

    #[test]
    fn error_messages_name_the_value_and_cut_long_input() {
        let e = parse_port_pair("8080:80:90").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid port pair \"8080:80:90\": expected `host:guest` with one `:`"
        );
        let long = "é".repeat(500);
        let msg = parse_env_pair(&long).unwrap_err().to_string();
        assert!(msg.contains("(1000 bytes)"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
    }
}
