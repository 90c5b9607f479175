//! The pull: resolve the reference, fetch what the cache lacks, unpack the
//! root once per image, record the reference.

use std::{fs, io::Read, time::SystemTime};

use monocore_rules::ImageReference;

use super::{
    Digest, Image, ImageConfig, ImageError, PullOptions, PullPolicy, PullReport,
    manifest::{self, Descriptor, MAX_CONFIG, Parsed},
    progress::PullEvent,
    registry::Registry,
    store::{ImageRecord, LayerRecord, Store, disk_usage, make_removable, write_atomic},
    unpack::{Compression, Unpacker},
};
use crate::error::image::io_at;

pub(crate) fn pull_image(
    reference: &ImageReference,
    options: &PullOptions,
) -> Result<Image, ImageError> {
    let store = Store::open(&options.cache_dir())?;
    let name = reference.to_string();
    if options.policy != PullPolicy::Always
        && let Some(record) = store.record(&name)?
        && store.rootfs(&record.config_digest).is_dir()
    {
        return Ok(Image {
            record,
            store,
            report: PullReport {
                from_cache: true,
                ..PullReport::default()
            },
        });
    }
    if options.policy == PullPolicy::Never {
        return Err(ImageError::NotCached(name));
    }
    let progress = |event: PullEvent<'_>| {
        if let Some(p) = &options.progress {
            p.event(event);
        }
    };
    let registry = Registry::connect(reference, options)?;
    let mut report = PullReport::default();
    let resolved = resolve(&store, &registry, reference, &name)?;
    progress(PullEvent::Resolved {
        manifest: &resolved.manifest_digest,
        layers: resolved.layers.len(),
    });
    let config = &resolved.config;
    if config.size > MAX_CONFIG {
        return Err(ImageError::BlobTooLarge {
            what: format!("image config {}", config.digest),
            limit: MAX_CONFIG,
        });
    }
    ensure_blob(&store, &registry, config, &mut report, &progress)?;
    let config_bytes = read_blob(&store, &config.digest, MAX_CONFIG)?;
    let (raw, diff_ids) =
        manifest::parse_config(&config_bytes, &config.digest, resolved.layers.len())?;
    let platform = check_platform(&name, &raw, resolved.platform)?;
    let records = fetch_layers(
        &store,
        &registry,
        &resolved.layers,
        diff_ids,
        &mut report,
        &progress,
    )?;
    let unpacked_bytes = ensure_rootfs(&store, &config.digest, &records, options, &progress)?;
    let record = ImageRecord {
        reference: name,
        manifest_digest: resolved.manifest_digest,
        index_digest: resolved.index_digest,
        config_digest: resolved.config.digest,
        platform,
        layers: records,
        config: raw.config.map(ImageConfig::from).unwrap_or_default(),
        unpacked_bytes,
        pulled_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    store.write_record(&record)?;
    Ok(Image {
        record,
        store,
        report,
    })
}

/// The image manifest a reference names, for this host's platform.
struct Resolved {
    /// The index the manifest was chosen from, if the reference named one.
    index_digest: Option<Digest>,
    manifest_digest: Digest,
    /// The platform the index gave for the manifest (empty without an
    /// index).
    platform: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Fetches the manifest `reference` names (through an index, for this
/// host's platform), checked against its digest and kept in the store.
fn resolve(
    store: &Store,
    registry: &Registry,
    reference: &ImageReference,
    name: &str,
) -> Result<Resolved, ImageError> {
    let pinned = reference
        .digest()
        .map(|d| Digest::parse(d, "reference"))
        .transpose()?;
    let (bytes, digest) = registry.manifest(reference.tag(), pinned.as_ref())?;
    let mut platform = String::new();
    let (index_digest, manifest_bytes, manifest_digest) = match manifest::parse(&bytes, &digest)? {
        Parsed::Index(entries) => {
            let (chosen, chosen_platform) = manifest::choose_platform(&entries, name)?;
            platform = chosen_platform;
            keep_blob(store, &digest, &bytes)?;
            let (child, child_digest) = registry.manifest(None, Some(&chosen.digest))?;
            (Some(digest), child, child_digest)
        }
        Parsed::Manifest { .. } => (None, bytes, digest),
    };
    let Parsed::Manifest { config, layers } = manifest::parse(&manifest_bytes, &manifest_digest)?
    else {
        return Err(ImageError::Malformed {
            what: "index",
            digest: manifest_digest.to_string(),
            reason: "an index whose entry for this platform is another index".into(),
        });
    };
    keep_blob(store, &manifest_digest, &manifest_bytes)?;
    Ok(Resolved {
        index_digest,
        manifest_digest,
        platform,
        config,
        layers,
    })
}

/// The image's platform (`os/arch`), if it runs here: Linux on this host's
/// architecture (an empty field is taken as a match).
fn check_platform(
    name: &str,
    raw: &manifest::RawConfig,
    from_index: String,
) -> Result<String, ImageError> {
    let arch = manifest::host_architecture();
    if (!raw.os.is_empty() && raw.os != "linux")
        || (!raw.architecture.is_empty() && raw.architecture != arch)
    {
        return Err(ImageError::NoMatchingPlatform {
            reference: name.to_owned(),
            wanted: format!("linux/{arch}"),
            available: vec![format!("{}/{}", raw.os, raw.architecture)],
        });
    }
    if from_index.is_empty() {
        return Ok(format!("{}/{}", raw.os, raw.architecture));
    }
    Ok(from_index)
}

/// Fetches the layers the cache lacks (each checked while it streams),
/// with their records.
fn fetch_layers(
    store: &Store,
    registry: &Registry,
    layers: &[Descriptor],
    diff_ids: Vec<Digest>,
    report: &mut PullReport,
    progress: &dyn Fn(PullEvent<'_>),
) -> Result<Vec<LayerRecord>, ImageError> {
    let mut records = Vec::with_capacity(layers.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        if Compression::of_media_type(&layer.media_type).is_none() {
            return Err(ImageError::UnsupportedMediaType {
                what: format!("layer {}", layer.digest),
                media_type: layer.media_type.clone(),
                expected: "a tar layer, uncompressed, gzip or zstd",
            });
        }
        ensure_blob(store, registry, layer, report, progress)?;
        records.push(LayerRecord {
            digest: layer.digest.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
            diff_id,
        });
    }
    Ok(records)
}

/// Keeps a manifest or index (already checked against its digest) in the
/// blob store, so that the cache can say what it pulled.
fn keep_blob(store: &Store, digest: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let path = store.blob(digest);
    if path.is_file() {
        return Ok(());
    }
    write_atomic(&path, bytes)
}

fn read_blob(store: &Store, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
    let path = store.blob(digest);
    let mut bytes = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(io_at(&path))?;
    Ok(bytes)
}

/// Puts `blob` in the cache unless it is there. One process downloads a
/// blob at a time (a lock per blob); the others wait, then find it.
fn ensure_blob(
    store: &Store,
    registry: &Registry,
    blob: &Descriptor,
    report: &mut PullReport,
    progress: &dyn Fn(PullEvent<'_>),
) -> Result<(), ImageError> {
    let path = store.blob(&blob.digest);
    let cached = |report: &mut PullReport| {
        report.cached_blobs += 1;
        progress(PullEvent::Cached {
            digest: &blob.digest,
            size: blob.size,
        });
    };
    if path.is_file() {
        cached(report);
        return Ok(());
    }
    let lock_name = format!("blob-{}", blob.digest.hex());
    let _lock = match store.try_lock(&lock_name, true)? {
        Some(lock) => lock,
        None => {
            progress(PullEvent::Waiting {
                digest: &blob.digest,
            });
            store.lock(&lock_name, true)?
        }
    };
    if path.is_file() {
        cached(report);
        return Ok(());
    }
    let partial = store.partial(&blob.digest);
    let resuming = fs::metadata(&partial).is_ok_and(|m| m.len() > 0);
    let transferred = match registry.download(blob, &partial, progress) {
        // What an interrupted pull left may be what was wrong: once more,
        // from the start (the failed attempt removed it).
        Err(ImageError::DigestMismatch { .. }) if resuming => {
            registry.download(blob, &partial, progress)?
        }
        other => other?,
    };
    fs::rename(&partial, &path).map_err(io_at(&path))?;
    report.downloaded_blobs += 1;
    report.downloaded_bytes += transferred;
    progress(PullEvent::Downloaded {
        digest: &blob.digest,
        size: blob.size,
    });
    Ok(())
}

/// Unpacks the layers into the image's root unless it is there; returns
/// its disk usage. One process unpacks an image at a time; a staging tree
/// left by an interrupted unpack is removed first.
fn ensure_rootfs(
    store: &Store,
    config: &Digest,
    layers: &[LayerRecord],
    options: &PullOptions,
    progress: &dyn Fn(PullEvent<'_>),
) -> Result<u64, ImageError> {
    let done = store.rootfs(config);
    if done.is_dir() {
        return Ok(disk_usage(&done));
    }
    let lock_name = format!("rootfs-{}", config.hex());
    let _lock = match store.try_lock(&lock_name, true)? {
        Some(lock) => lock,
        None => {
            progress(PullEvent::Waiting { digest: config });
            store.lock(&lock_name, true)?
        }
    };
    if done.is_dir() {
        return Ok(disk_usage(&done));
    }
    let staging = store.staging(config);
    remove_tree(&staging)?;
    fs::create_dir(&staging).map_err(io_at(&staging))?;
    let unpacked = unpack_into(&staging, store, layers, options, progress);
    if let Err(e) = unpacked {
        let _ = remove_tree(&staging);
        return Err(e);
    }
    fs::rename(&staging, &done).map_err(io_at(&done))?;
    Ok(disk_usage(&done))
}

fn unpack_into(
    staging: &std::path::Path,
    store: &Store,
    layers: &[LayerRecord],
    options: &PullOptions,
    progress: &dyn Fn(PullEvent<'_>),
) -> Result<(), ImageError> {
    let mut unpacker = Unpacker::new(staging, options.limits).map_err(io_at(staging))?;
    for (index, layer) in layers.iter().enumerate() {
        progress(PullEvent::Unpacking {
            digest: &layer.digest,
            index,
            count: layers.len(),
        });
        let compression = Compression::of_media_type(&layer.media_type).ok_or_else(|| {
            ImageError::UnsupportedMediaType {
                what: format!("layer {}", layer.digest),
                media_type: layer.media_type.clone(),
                expected: "a tar layer, uncompressed, gzip or zstd",
            }
        })?;
        let path = store.blob(&layer.digest);
        let file = fs::File::open(&path).map_err(io_at(&path))?;
        unpacker.apply(
            std::io::BufReader::with_capacity(256 << 10, file),
            compression,
            &layer.digest.to_string(),
            &layer.diff_id.to_string(),
        )?;
    }
    unpacker.finish();
    Ok(())
}

/// Removes a tree the cache owns, if it is there.
pub(crate) fn remove_tree(path: &std::path::Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(_) => {
            make_removable(path);
            fs::remove_dir_all(path).map_err(io_at(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path)(e)),
    }
}
