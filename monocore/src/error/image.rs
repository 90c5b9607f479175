//! [`ImageError`]: every way pulling, caching or unpacking an image fails.

use std::{io, path::PathBuf};

use monocore_rules::ImageRefError;

/// Why an image could not be pulled, unpacked or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ImageRefError),

    /// The cache directory (or one of its directories) cannot be used: it
    /// is not private to this user, or cannot be created.
    #[error(transparent)]
    State(#[from] super::StateError),

    /// The registry refused a request, or could not be reached.
    #[error("registry request for {reference} failed")]
    Registry {
        /// The image.
        reference: String,
        /// What the client reported.
        #[source]
        source: Box<oci_client::errors::OciDistributionError>,
    },

    /// A blob's download broke off.
    #[error("downloading {what} failed")]
    Transfer {
        /// The blob.
        what: String,
        /// What the connection reported.
        #[source]
        source: io::Error,
    },

    /// `--registry-auth` is not `USER:PASSWORD`.
    #[error("invalid registry credentials {0:?}: expected `USER:PASSWORD`")]
    AuthFormat(String),

    /// A docker config file (`~/.docker/config.json`) cannot be used.
    #[error("cannot read registry credentials from {}: {reason}", path.display())]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A manifest, index or image config is not what the OCI image spec
    /// describes.
    #[error("{what} {digest} is malformed: {reason}")]
    Malformed {
        /// `manifest`, `index` or `image config`.
        what: &'static str,
        /// Its digest.
        digest: String,
        /// What is wrong.
        reason: String,
    },

    /// A manifest or layer of a kind monocore cannot use.
    #[error(
        "{what} has media type {media_type:?}, which monocore cannot use (expected {expected})"
    )]
    UnsupportedMediaType {
        /// The manifest or layer.
        what: String,
        /// Its media type.
        media_type: String,
        /// What is accepted there.
        expected: &'static str,
    },

    /// An index has no image for this host's platform.
    #[error("{reference} has no image for {wanted}; it has: {}", available.join(", "))]
    NoMatchingPlatform {
        /// The image.
        reference: String,
        /// The platform wanted: `linux/amd64`.
        wanted: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },

    /// A blob's bytes do not have the digest that named them.
    #[error(
        "{what} does not match its digest: expected {expected}, got {actual}; nothing was kept"
    )]
    DigestMismatch {
        /// The blob (`layer sha256:…`, `manifest sha256:…`).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// A blob is larger than its descriptor says, or than monocore allows.
    #[error("{what} is larger than {limit} bytes")]
    BlobTooLarge {
        /// The blob.
        what: String,
        /// The bound.
        limit: u64,
    },

    /// A layer unpacks to more than the configured bounds (a decompression
    /// bomb, or simply an image larger than allowed).
    #[error(
        "layer {layer} exceeds the unpack limit of {limit} {what}; nothing was kept (raise PullOptions::limits if the image is genuine)"
    )]
    UnpackLimit {
        /// The layer's digest.
        layer: String,
        /// `bytes` or `entries`.
        what: &'static str,
        /// The bound.
        limit: u64,
    },

    /// A layer's archive is not a valid (gzip or zstd compressed) tar.
    #[error("layer {layer} is not a valid archive at byte {offset} of its tar stream: {reason}")]
    BadArchive {
        /// The layer's digest.
        layer: String,
        /// Where in the uncompressed stream.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// An entry of a layer cannot be unpacked.
    #[error("layer {layer}: cannot unpack {entry:?}: {reason}")]
    Entry {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the archive.
        entry: String,
        /// Why.
        reason: String,
    },

    /// The image config's defaults do not make a runnable command.
    #[error("image {reference}: {reason}")]
    Config {
        /// The image.
        reference: String,
        /// What is wrong.
        reason: String,
    },

    /// The image is not in the cache (and pulling was not allowed).
    #[error("image {0} is not in the cache: pull it first (`monocore pull {0}`)")]
    NotCached(String),

    /// A cache operation failed.
    #[error("image cache operation on {} failed", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A closure that wraps an I/O error with `path`, for `map_err`.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}
