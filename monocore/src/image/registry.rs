//! The registry client: `oci-client` (the oras project's OCI distribution
//! client), driven by a private current-thread tokio runtime so that
//! monocore's API stays blocking. monocore verifies every byte itself:
//! manifests against the digest that named them, blobs against their
//! descriptor's digest and size while they stream to disk.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use futures_util::StreamExt;
use monocore_rules::ImageReference;
use oci_client::{
    Client, Reference,
    client::{BlobResponse, ClientConfig, ClientProtocol},
    manifest::OciDescriptor,
    secrets::RegistryAuth,
};
use sha2::{Digest as _, Sha256};

use super::{
    Digest, ImageError, PullOptions,
    manifest::{ACCEPTED, Descriptor, MAX_MANIFEST},
    progress::PullEvent,
};
use crate::error::image::io_at;

/// Whether `reference`'s registry is reached over plain HTTP: a loopback
/// one, or one listed as insecure; every other one over HTTPS.
fn plain_http(reference: &ImageReference, insecure: &[String]) -> bool {
    reference.is_loopback() || insecure.iter().any(|r| r == reference.registry())
}

/// A connection to one image's repository.
pub(crate) struct Registry {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    repository: Reference,
    name: String,
}

impl Registry {
    /// A client for `reference`'s registry: HTTPS, except for a loopback
    /// registry or one the options call insecure, which get plain HTTP.
    pub(crate) fn connect(
        reference: &ImageReference,
        options: &PullOptions,
    ) -> Result<Self, ImageError> {
        // reqwest's rustls needs a process-wide crypto provider; another
        // one already installed (by the program) is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.registry().to_owned();
        let protocol = if plain_http(reference, &options.insecure_registries) {
            // oci-client compares the name it resolves (Docker Hub's is
            // index.docker.io): list both.
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            // monocore picks the platform itself, with a typed error.
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            user_agent: concat!("monocore/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io_at(Path::new("tokio runtime"))(e))?;
        let auth = match options.credentials_for(&registry)? {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let repository = Reference::with_tag(
            registry.clone(),
            reference.repository().to_owned(),
            reference.tag().unwrap_or("latest").to_owned(),
        );
        Ok(Self {
            runtime,
            client: Client::new(config),
            auth,
            repository,
            name: reference.to_string(),
        })
    }

    fn registry_error(&self, source: oci_client::errors::OciDistributionError) -> ImageError {
        ImageError::Registry {
            reference: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// The manifest (or index) named by `digest`, or by the reference's
    /// tag when `digest` is `None`; checked against its digest.
    pub(crate) fn manifest(
        &self,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest), ImageError> {
        let reference = match (digest, tag) {
            (Some(d), _) => self.repository.clone_with_digest(d.to_string()),
            (None, Some(tag)) => Reference::with_tag(
                self.repository.registry().to_owned(),
                self.repository.repository().to_owned(),
                tag.to_owned(),
            ),
            (None, None) => self.repository.clone(),
        };
        let (bytes, _) = self
            .runtime
            .block_on(
                self.client
                    .pull_manifest_raw(&reference, &self.auth, &ACCEPTED),
            )
            .map_err(|e| self.registry_error(e))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(ImageError::BlobTooLarge {
                what: format!("the manifest of {}", self.name),
                limit: MAX_MANIFEST,
            });
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = digest
            && *expected != actual
        {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {expected}"),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Downloads `blob` into `partial` (resuming what is there), checking
    /// size and digest as it streams. On success `partial` holds exactly
    /// the blob, synced; on a mismatch it is removed. Returns the bytes
    /// transferred.
    pub(crate) fn download(
        &self,
        blob: &Descriptor,
        partial: &Path,
        progress: &dyn Fn(PullEvent<'_>),
    ) -> Result<u64, ImageError> {
        let mut file = super::store::open_private(partial).map_err(io_at(partial))?;
        let mut have = file.metadata().map_err(io_at(partial))?.len();
        if have > blob.size {
            have = 0;
        }
        // Resume: hash what an interrupted pull left.
        let mut hasher = hash_prefix(&file, have).map_err(io_at(partial))?;
        file.set_len(have).map_err(io_at(partial))?;
        file.seek(SeekFrom::Start(have)).map_err(io_at(partial))?;
        let what = format!("blob {}", blob.digest);
        let descriptor = oci_descriptor(blob);
        let mut transferred = 0;
        if have < blob.size {
            let runtime = &self.runtime;
            transferred = runtime.block_on(async {
                let response = self
                    .client
                    .pull_blob_stream_partial(&self.repository, &descriptor, have, None)
                    .await
                    .map_err(|e| self.registry_error(e))?;
                let mut stream = match response {
                    BlobResponse::Partial(stream) => stream,
                    BlobResponse::Full(stream) => {
                        // The registry ignored the range: start over.
                        have = 0;
                        hasher = Sha256::new();
                        file.set_len(0).map_err(io_at(partial))?;
                        file.seek(SeekFrom::Start(0)).map_err(io_at(partial))?;
                        stream
                    }
                };
                let mut transferred = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|source| ImageError::Transfer {
                        what: what.clone(),
                        source,
                    })?;
                    have += chunk.len() as u64;
                    transferred += chunk.len() as u64;
                    if have > blob.size {
                        return Err(ImageError::BlobTooLarge {
                            what: what.clone(),
                            limit: blob.size,
                        });
                    }
                    hasher.update(&chunk);
                    file.write_all(&chunk).map_err(io_at(partial))?;
                    progress(PullEvent::Downloading {
                        digest: &blob.digest,
                        done: have,
                        total: blob.size,
                    });
                }
                Ok::<u64, ImageError>(transferred)
            })?;
        }
        let actual = format!("sha256:{}", super::digest::hex(&hasher.finalize()));
        if have != blob.size || actual != blob.digest.to_string() {
            drop(file);
            let _ = std::fs::remove_file(partial);
            return Err(ImageError::DigestMismatch {
                what,
                expected: blob.digest.to_string(),
                actual: if have == blob.size {
                    actual
                } else {
                    format!("{have} bytes instead of {}", blob.size)
                },
            });
        }
        file.sync_all().map_err(io_at(partial))?;
        Ok(transferred)
    }
}

/// The sha256 state of the first `len` bytes of `file`.
fn hash_prefix(file: &std::fs::File, len: u64) -> std::io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut head = file.take(len);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = head.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher);
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
}

/// `blob` as the registry client asks for it.
fn oci_descriptor(blob: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: blob.media_type.clone(),
        digest: blob.digest.to_string(),
        size: i64::try_from(blob.size).unwrap_or(i64::MAX),
        // Never fetched from elsewhere than the registry: no `urls`.
        urls: None,
        annotations: None,
        artifact_type: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_or_listed_registries_get_plain_http() {
        let http = |reference: &str, insecure: &[&str]| {
            let insecure: Vec<String> = insecure.iter().map(|s| (*s).to_owned()).collect();
            plain_http(&reference.parse().unwrap(), &insecure)
        };
        assert!(http("localhost:5000/x", &[]));
        assert!(http("127.0.0.1:5000/x", &[]));
        assert!(http("[::1]:5000/x", &[]));
        assert!(!http("alpine", &[]));
        assert!(!http("registry.lan:5000/x", &[]));
        assert!(!http("registry.lan:5000/x", &["registry.lan"]));
        assert!(http("registry.lan:5000/x", &["registry.lan:5000"]));
        // Docker Hub stays HTTPS whatever the list says about another name.
        assert!(!http("alpine", &["registry.lan:5000"]));
    }
}
