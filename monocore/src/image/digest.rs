//! sha256 digests: the only algorithm monocore accepts, checked (by the
//! rule image references use, `monocore_rules::image_ref::sha256_hex`)
//! before a digest names a file in the cache.

use std::fmt;

use monocore_rules::image_ref::{SHA256_DIGEST_FORM, sha256_hex};

use super::ImageError;

/// A `sha256:` digest with 64 lowercase hex digits.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; `what` names the value in the
    /// error.
    pub fn parse(value: &str, what: &'static str) -> Result<Self, ImageError> {
        match sha256_hex(value) {
            Some(hex) => Ok(Self {
                hex: hex.to_owned(),
            }),
            None => Err(ImageError::Malformed {
                what,
                digest: value.chars().take(100).collect(),
                reason: format!("it is not {SHA256_DIGEST_FORM}"),
            }),
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self {
            hex: hex(&sha2::Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, for humans.
    pub fn short(&self) -> &str {
        self.hex.get(..12).unwrap_or(&self.hex)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, "digest").map_err(|e| e.to_string())
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> Self {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_hex_names_a_file() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(Digest::parse(&good, "x").unwrap().to_string(), good);
        for bad in [
            "sha256:../../etc/passwd".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{}", "0".repeat(64)),
            format!("sha256:{}/", "0".repeat(63)),
            String::new(),
        ] {
            assert!(Digest::parse(&bad, "x").is_err(), "{bad}");
        }
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
