//! Image references (`alpine:3.20`, `ghcr.io/org/app@sha256:…`,
//! `localhost:5000/x:y`), parsed and normalised the way docker does, so the
//! `vm!` macro checks a literal at compile time with the very rule the
//! command line and the library use at run time.
//!
//! The grammar is the distribution project's (`reference/regexp.go`):
//!
//! ```text
//! reference   := name [":" tag] ["@" digest]
//! name        := [domain "/"] path-component ("/" path-component)*
//! domain      := host [":" port]      host: DNS labels, or "[" IPv6 "]"
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator   := "." | "_" | "__" | "-"+
//! tag         := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest      := "sha256:" 64 lowercase hex digits
//! ```
//!
//! Normalisation (docker's `ParseNormalizedNamed`): the part before the
//! first `/` is a registry only if it holds a `.` or a `:`, or is
//! `localhost`; otherwise the registry is Docker Hub (`docker.io`), and a
//! one-component Docker Hub name gets `library/` in front (`alpine` →
//! `docker.io/library/alpine`). `index.docker.io` is `docker.io`. Without a
//! tag or digest the tag is `latest`.
//!
//! ```
//! use monocore_rules::image_ref::ImageReference;
//! let r: ImageReference = "alpine:3.20".parse()?;
//! assert_eq!(r.to_string(), "docker.io/library/alpine:3.20");
//! let r: ImageReference = "localhost:5000/x/y".parse()?;
//! assert_eq!((r.registry(), r.repository(), r.tag()), ("localhost:5000", "x/y", Some("latest")));
//! assert!(r.is_loopback());
//! # Ok::<(), monocore_rules::image_ref::ImageRefError>(())
//! ```

use core::fmt;

use crate::pair::Excerpt;

/// Docker Hub, the registry of a name without one.
pub const DOCKER_HUB: &str = "docker.io";

/// A name (registry and repository) is at most this long, as in docker.
pub const MAX_NAME_LEN: usize = 255;

/// A tag is at most this long.
pub const MAX_TAG_LEN: usize = 128;

/// The tag of a reference that names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// What is wrong with a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefErrorKind {
    /// Nothing to parse.
    #[error("it is empty")]
    Empty,
    /// The registry and repository are too long.
    #[error("the name is {len} bytes long; at most {MAX_NAME_LEN} are allowed")]
    NameTooLong {
        /// The name's length.
        len: usize,
    },
    /// The registry part is not a host with an optional port.
    #[error("registry {0:?} is not a host name, IPv4 or [IPv6] address with an optional :port")]
    Registry(String),
    /// A repository path component breaks the grammar.
    #[error(
        "repository component {0:?} is not lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
    )]
    PathComponent(String),
    /// The tag breaks the grammar.
    #[error(
        "tag {0:?} is not 1 to {MAX_TAG_LEN} letters, digits, `_`, `.` or `-` (not starting with `.` or `-`)"
    )]
    Tag(String),
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error("digest {0:?} is not {SHA256_DIGEST_FORM}")]
    Digest(String),
}

/// A string that is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {}: {kind}", Excerpt(input))]
pub struct ImageRefError {
    /// The whole input.
    pub input: String,
    /// What is wrong with it.
    pub kind: ImageRefErrorKind,
}

/// Parses and normalises `input`; see the [module docs](self).
pub fn parse_image_ref(input: &str) -> Result<ImageReference, ImageRefError> {
    let fail = |kind| ImageRefError {
        input: input.to_owned(),
        kind,
    };
    if input.is_empty() {
        return Err(fail(ImageRefErrorKind::Empty));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest).map_err(fail)?;
            (rest, Some(digest.to_owned()))
        }
        None => (input, None),
    };
    // A tag follows the last `:` after the last `/` (a registry port comes
    // before the first `/`).
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest.get(slash..).and_then(|last| last.rfind(':')) {
        Some(colon) => {
            let at = slash + colon;
            let tag = rest.get(at + 1..).unwrap_or_default();
            check_tag(tag).map_err(fail)?;
            (rest.get(..at).unwrap_or_default(), Some(tag.to_owned()))
        }
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(fail(ImageRefErrorKind::Empty));
    }
    let (registry, repository) = split_registry(name);
    check_registry(registry).map_err(fail)?;
    for component in repository.split('/') {
        check_component(component).map_err(fail)?;
    }
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };
    let len = registry.len() + 1 + repository.len();
    if len > MAX_NAME_LEN {
        return Err(fail(ImageRefErrorKind::NameTooLong { len }));
    }
    let tag = match (tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (tag, _) => tag,
    };
    Ok(ImageReference {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// docker's rule: the first component is a registry only if it holds `.`
/// or `:`, or is `localhost`.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

/// The only digest form monocore accepts, for messages.
pub const SHA256_DIGEST_FORM: &str = "`sha256:` followed by 64 lowercase hex digits";

/// The 64 hex digits of `digest` if it is a sha256 digest: `sha256:` and
/// exactly 64 lowercase hex digits ([`SHA256_DIGEST_FORM`]), the only
/// digest monocore accepts, in a reference and before a digest names a file
/// in the image cache.
///
/// ```
/// use monocore_rules::image_ref::sha256_hex;
/// let hex = "0a".repeat(32);
/// assert_eq!(sha256_hex(&format!("sha256:{hex}")), Some(hex.as_str()));
/// assert_eq!(sha256_hex("sha256:../../etc/passwd"), None);
/// assert_eq!(sha256_hex(&format!("sha256:{}", "A".repeat(64))), None);
/// ```
pub fn sha256_hex(digest: &str) -> Option<&str> {
    digest.strip_prefix("sha256:").filter(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_digest(digest: &str) -> Result<(), ImageRefErrorKind> {
    match sha256_hex(digest) {
        Some(_) => Ok(()),
        None => Err(ImageRefErrorKind::Digest(digest.to_owned())),
    }
}

fn check_tag(tag: &str) -> Result<(), ImageRefErrorKind> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= MAX_TAG_LEN
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ImageRefErrorKind::Tag(tag.to_owned()))
    }
}

fn check_registry(registry: &str) -> Result<(), ImageRefErrorKind> {
    let bad = || ImageRefErrorKind::Registry(registry.to_owned());
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            _ => (None, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), ImageRefErrorKind> {
    let bad = || ImageRefErrorKind::PathComponent(component.to_owned());
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
        return Err(bad());
    }
    // Between alphanumeric runs: ".", "_", "__" or one or more "-".
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            let ok = matches!(separator.as_str(), "" | "." | "_" | "__")
                || separator.bytes().all(|s| s == b'-');
            if !ok {
                return Err(bad());
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return Err(bad());
        }
    }
    Ok(())
}

impl ImageReference {
    /// The registry: `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository: `library/alpine`, `org/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag (`latest` when the reference named neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, `sha256:…`, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The registry's host, without the port (and without `[]` for IPv6).
    pub fn host(&self) -> &str {
        let registry = self.registry.as_str();
        if let Some(v6) = registry.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        registry.split(':').next().unwrap_or(registry)
    }

    /// Whether the registry is this machine: `localhost`, `127.0.0.0/8` or
    /// `::1`. Only such registries are reached over plain HTTP by default.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl core::str::FromStr for ImageReference {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_image_ref(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(input: &str) -> (String, String, Option<String>, Option<String>) {
        let r = parse_image_ref(input).unwrap();
        (
            r.registry,
            r.repository,
            r.tag,
            r.digest.map(|d| d.chars().take(10).collect()),
        )
    }

    #[test]
    fn short_names_expand_like_docker() {
        let hub = |repo: &str, tag: &str| {
            (
                "docker.io".to_owned(),
                repo.to_owned(),
                Some(tag.to_owned()),
                None,
            )
        };
        assert_eq!(parts("alpine"), hub("library/alpine", "latest"));
        assert_eq!(parts("alpine:3.20"), hub("library/alpine", "3.20"));
        assert_eq!(parts("user/app:v1"), hub("user/app", "v1"));
        assert_eq!(parts("docker.io/alpine"), hub("library/alpine", "latest"));
        assert_eq!(
            parts("index.docker.io/library/alpine"),
            hub("library/alpine", "latest")
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse_image_ref(&format!("ghcr.io/org/app@{digest}")).unwrap();
        assert_eq!((r.registry(), r.repository()), ("ghcr.io", "org/app"));
        assert_eq!((r.tag(), r.digest()), (None, Some(digest.as_str())));
        assert_eq!(r.to_string(), format!("ghcr.io/org/app@{digest}"));
        let r = parse_image_ref(&format!("app:v2@{digest}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/app:v2@{digest}"));
    }

    #[test]
    fn registries_are_told_apart_from_repositories() {
        assert_eq!(parts("localhost/x").0, "localhost");
        assert_eq!(parts("localhost:5000/x:y").0, "localhost:5000");
        assert_eq!(parts("127.0.0.1:5000/a/b/c").1, "a/b/c");
        assert_eq!(parts("[::1]:5000/x").0, "[::1]:5000");
        // Without `.`, `:` or `localhost` the first part is a Docker Hub user.
        assert_eq!(parts("myhost/x").0, "docker.io");
        for (input, loopback) in [
            ("localhost:5000/x", true),
            ("127.0.0.5/x", true),
            ("[::1]:1/x", true),
            ("example.com/x", false),
            ("alpine", false),
        ] {
            assert_eq!(
                parse_image_ref(input).unwrap().is_loopback(),
                loopback,
                "{input}"
            );
        }
    }

    #[test]
    fn bad_references_say_which_part_is_wrong() {
        let kind = |input: &str| parse_image_ref(input).unwrap_err().kind;
        assert_eq!(kind(""), ImageRefErrorKind::Empty);
        assert_eq!(kind(":tag"), ImageRefErrorKind::Empty);
        assert_eq!(
            kind("Alpine"),
            ImageRefErrorKind::PathComponent("Alpine".into())
        );
        assert_eq!(
            kind("a..b"),
            ImageRefErrorKind::PathComponent("a..b".into())
        );
        assert_eq!(kind("a/-b"), ImageRefErrorKind::PathComponent("-b".into()));
        assert!(parse_image_ref("a__b/c---d/e.f_g").is_ok());
        assert_eq!(kind("a:.x"), ImageRefErrorKind::Tag(".x".into()));
        assert_eq!(kind("a:"), ImageRefErrorKind::Tag(String::new()));
        assert!(matches!(
            kind(&format!("a:{}", "t".repeat(129))),
            ImageRefErrorKind::Tag(_)
        ));
        assert_eq!(
            kind("a@sha256:abc"),
            ImageRefErrorKind::Digest("sha256:abc".into())
        );
        assert!(matches!(
            kind(&format!("a@md5:{}", "0".repeat(64))),
            ImageRefErrorKind::Digest(_)
        ));
        assert_eq!(
            kind("ho_st.io/x"),
            ImageRefErrorKind::Registry("ho_st.io".into())
        );
        assert_eq!(
            kind("host:port/x"),
            ImageRefErrorKind::Registry("host:port".into())
        );
        assert_eq!(
            kind("[zz]:1/x"),
            ImageRefErrorKind::Registry("[zz]:1".into())
        );
        assert_eq!(kind("a b"), ImageRefErrorKind::PathComponent("a b".into()));
        assert!(matches!(
            kind(&format!("r.io/{}", "a".repeat(300))),
            ImageRefErrorKind::NameTooLong { len: 305 }
        ));
        let message = parse_image_ref("Alpine").unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid image reference \"Alpine\": repository component \"Alpine\" is not lowercase letters and digits, separated by `.`, `_`, `__` or dashes"
        );
    }

    #[test]
    fn a_reference_prints_to_text_that_parses_back_to_itself() {
        for input in [
            "alpine",
            "a/b:c",
            "localhost:1/x@sha256:".to_owned().as_str(),
        ] {
            let Ok(r) = parse_image_ref(input) else {
                continue;
            };
            assert_eq!(parse_image_ref(&r.to_string()).unwrap(), r);
        }
    }
}
