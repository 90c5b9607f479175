//! Manifests, indexes and image configs, parsed leniently (unknown fields
//! ignored) but checked where monocore relies on them: every digest is a
//! sha256 one, every size fits, and the config has one diff ID per layer.

use serde::Deserialize;

use super::{Digest, ImageError};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The media types asked for when fetching a manifest.
pub(crate) const ACCEPTED: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// A manifest or index is at most this large (4 MiB, as containerd).
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// An image config is at most this large.
pub(crate) const MAX_CONFIG: u64 = 8 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    platform: Option<Platform>,
}

/// A platform of an index entry.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

/// A checked descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

/// A parsed manifest or index.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// An index (manifest list): its entries with their platforms.
    Index(Vec<(Descriptor, Option<Platform>)>),
    /// An image manifest.
    Manifest {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

fn descriptor(
    raw: &RawDescriptor,
    what: &'static str,
    of: &Digest,
) -> Result<Descriptor, ImageError> {
    let size = u64::try_from(raw.size).map_err(|_| ImageError::Malformed {
        what,
        digest: of.to_string(),
        reason: format!("a descriptor with size {}", raw.size),
    })?;
    Ok(Descriptor {
        media_type: raw.media_type.clone(),
        digest: Digest::parse(&raw.digest, what)?,
        size,
    })
}

/// Parses the manifest or index `bytes`, whose digest is `digest`.
pub(crate) fn parse(bytes: &[u8], digest: &Digest) -> Result<Parsed, ImageError> {
    let malformed = |reason: String| ImageError::Malformed {
        what: "manifest",
        digest: digest.to_string(),
        reason,
    };
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if raw.schema_version != 2 {
        return Err(malformed(format!(
            "schema version {} (only 2 is supported)",
            raw.schema_version
        )));
    }
    let media_type = raw.media_type.clone().unwrap_or_default();
    if let Some(entries) = &raw.manifests {
        if !matches!(media_type.as_str(), "" | OCI_INDEX | DOCKER_LIST) {
            return Err(unsupported(
                digest,
                &media_type,
                "an image index or manifest list",
            ));
        }
        let entries = entries
            .iter()
            .map(|e| Ok((descriptor(e, "index", digest)?, e.platform.clone())))
            .collect::<Result<_, ImageError>>()?;
        return Ok(Parsed::Index(entries));
    }
    if !matches!(media_type.as_str(), "" | OCI_MANIFEST | DOCKER_MANIFEST) {
        return Err(unsupported(digest, &media_type, "an image manifest"));
    }
    let config = raw
        .config
        .as_ref()
        .ok_or_else(|| malformed("no config descriptor".into()))?;
    let layers = raw
        .layers
        .as_ref()
        .ok_or_else(|| malformed("no layers".into()))?;
    Ok(Parsed::Manifest {
        config: descriptor(config, "manifest", digest)?,
        layers: layers
            .iter()
            .map(|l| descriptor(l, "manifest", digest))
            .collect::<Result<_, _>>()?,
    })
}

fn unsupported(digest: &Digest, media_type: &str, expected: &'static str) -> ImageError {
    ImageError::UnsupportedMediaType {
        what: format!("manifest {digest}"),
        media_type: media_type.to_owned(),
        expected,
    }
}

/// This host's platform as OCI names it: `linux/amd64`, `linux/arm64`.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The entry for linux on this host's architecture, or the error listing
/// what the index has.
pub(crate) fn choose_platform(
    entries: &[(Descriptor, Option<Platform>)],
    reference: &str,
) -> Result<(Descriptor, String), ImageError> {
    let arch = host_architecture();
    entries
        .iter()
        .find(|(_, p)| {
            p.as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .map(|(d, p)| {
            (
                d.clone(),
                p.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            )
        })
        .ok_or_else(|| ImageError::NoMatchingPlatform {
            reference: reference.to_owned(),
            wanted: format!("linux/{arch}"),
            available: entries
                .iter()
                .map(|(_, p)| {
                    p.as_ref()
                        .map_or_else(|| "(no platform)".to_owned(), |p| p.to_string())
                })
                .collect(),
        })
}

/// The parts of an image config monocore uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) config: Option<RawRunConfig>,
    pub(crate) rootfs: RawRootfs,
}

/// `config` of an image config: the defaults of a container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RawRunConfig {
    #[serde(default)]
    pub(crate) user: Option<String>,
    #[serde(default)]
    pub(crate) env: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) cmd: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) working_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawRootfs {
    #[serde(default)]
    pub(crate) diff_ids: Vec<String>,
}

/// Parses an image config and checks it has one diff ID per layer.
pub(crate) fn parse_config(
    bytes: &[u8],
    digest: &Digest,
    layers: usize,
) -> Result<(RawConfig, Vec<Digest>), ImageError> {
    let malformed = |reason: String| ImageError::Malformed {
        what: "image config",
        digest: digest.to_string(),
        reason,
    };
    let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    if raw.rootfs.diff_ids.len() != layers {
        return Err(malformed(format!(
            "{} diff IDs for {layers} layers",
            raw.rootfs.diff_ids.len()
        )));
    }
    let diff_ids = raw
        .rootfs
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d, "image config"))
        .collect::<Result<_, _>>()?;
    Ok((raw, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn an_index_picks_linux_on_this_architecture() {
        let arch = host_architecture();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"os":"linux","architecture":"s390x"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"os":"linux","architecture":"{arch}"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10}}]}}"#,
            digest(1),
            digest(2),
            digest(3)
        );
        let Parsed::Index(entries) = parse(index.as_bytes(), &Digest::of(b"i")).unwrap() else {
            panic!("not an index");
        };
        let (chosen, platform) = choose_platform(&entries, "x").unwrap();
        assert_eq!(chosen.digest.to_string(), digest(2));
        assert_eq!(platform, format!("linux/{arch}"));
        let others: Vec<_> = entries
            .into_iter()
            .filter(|(d, _)| d.digest != chosen.digest)
            .collect();
        let err = choose_platform(&others, "x").unwrap_err().to_string();
        assert!(err.contains("linux/s390x, (no platform)"), "{err}");
    }

    #[test]
    fn hostile_manifests_are_typed_errors() {
        let d = Digest::of(b"m");
        for bad in [
            r#"{"schemaVersion":1}"#.to_owned(),
            r#"{"schemaVersion":2,"config":{"digest":"sha256:../x","size":1},"layers":[]}"#
                .to_owned(),
            format!(
                r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":-1}},"layers":[]}}"#,
                digest(1)
            ),
            r#"{"schemaVersion":2,"mediaType":"text/html","layers":[]}"#.to_owned(),
            "[]".to_owned(),
        ] {
            assert!(parse(bad.as_bytes(), &d).is_err(), "{bad}");
        }
        let config = format!(
            r#"{{"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            digest(1)
        );
        assert!(parse_config(config.as_bytes(), &d, 1).is_ok());
        assert!(parse_config(config.as_bytes(), &d, 2).is_err());
    }
}
