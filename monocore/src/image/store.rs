//! The content-addressed image cache; see the layout in the
//! [module docs](super).

use std::{
    fs::{self, File},
    io::{self, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use super::{Digest, ImageError};
use crate::error::image::io_at;

/// One layer of a cached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The digest of its uncompressed tar stream.
    pub diff_id: Digest,
}

/// What the cache knows of one pulled reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalised reference (`docker.io/library/alpine:3.20`).
    pub reference: String,
    /// The digest of the manifest the reference resolved to (for an
    /// index, the platform's manifest).
    pub manifest_digest: Digest,
    /// The digest of the index, if the reference named one.
    pub index_digest: Option<Digest>,
    /// The image config's digest (the image ID), which names the unpacked
    /// root.
    pub config_digest: Digest,
    /// `os/architecture`.
    pub platform: String,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The image's run defaults.
    pub config: super::ImageConfig,
    /// The unpacked root's disk usage in bytes.
    pub unpacked_bytes: u64,
    /// When it was pulled (seconds since the Unix epoch).
    pub pulled_at: u64,
}

impl ImageRecord {
    /// The compressed layers' total size.
    pub fn compressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// The cache directory's layout.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

/// An advisory lock (flock) on a lock file, released when dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

impl Store {
    /// The cache at `root`, its directories created and checked private.
    pub(crate) fn open(root: &Path) -> Result<Self, ImageError> {
        for dir in ["", "blobs/sha256", "rootfs", "refs", "tmp", "locks"] {
            crate::state::ensure_private_dir(&root.join(dir))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub(crate) fn partial(&self, digest: &Digest) -> PathBuf {
        self.root.join("tmp").join(format!("blob-{}", digest.hex()))
    }

    pub(crate) fn rootfs(&self, config: &Digest) -> PathBuf {
        self.root.join("rootfs").join(config.hex())
    }

    pub(crate) fn staging(&self, config: &Digest) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("rootfs-{}", config.hex()))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.root
            .join("refs")
            .join(format!("{}.json", Digest::of(reference.as_bytes()).hex()))
    }

    /// Takes the lock `name`, shared or exclusive, waiting for it.
    pub(crate) fn lock(&self, name: &str, exclusive: bool) -> Result<Lock, ImageError> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        self.take(name, exclusive, true)?
            .ok_or_else(|| io_at(&path)(io::ErrorKind::WouldBlock.into()))
    }

    /// Takes the lock `name` if no one holds it.
    pub(crate) fn try_lock(&self, name: &str, exclusive: bool) -> Result<Option<Lock>, ImageError> {
        self.take(name, exclusive, false)
    }

    fn take(&self, name: &str, exclusive: bool, wait: bool) -> Result<Option<Lock>, ImageError> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let file = open_private(&path).map_err(io_at(&path))?;
        let operation = match (exclusive, wait) {
            (true, true) => FlockOperation::LockExclusive,
            (true, false) => FlockOperation::NonBlockingLockExclusive,
            (false, true) => FlockOperation::LockShared,
            (false, false) => FlockOperation::NonBlockingLockShared,
        };
        match rustix::fs::flock(&file, operation) {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) if !wait => Ok(None),
            Err(e) => Err(io_at(&path)(e.into())),
        }
    }

    /// The record of `reference`, if it was pulled.
    pub(crate) fn record(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let path = self.record_path(reference);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        match serde_json::from_slice::<ImageRecord>(&bytes) {
            Ok(record) if record.reference == reference => Ok(Some(record)),
            // A record of an older format or a damaged one: pull again.
            _ => Ok(None),
        }
    }

    /// Writes `record` atomically (a temporary file, synced, renamed).
    pub(crate) fn write_record(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let path = self.record_path(&record.reference);
        let json = serde_json::to_vec_pretty(record).map_err(|e| io_at(&path)(e.into()))?;
        write_atomic(&path, &json)
    }

    /// Every record, sorted by reference.
    pub(crate) fn records(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("refs");
        let mut records = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let Ok(bytes) = fs::read(entry.path()) else {
                continue;
            };
            if let Ok(record) = serde_json::from_slice::<ImageRecord>(&bytes) {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }

    /// Forgets `reference`; its blobs and root stay until [`prune`](Self::prune).
    pub(crate) fn remove_record(&self, reference: &str) -> Result<bool, ImageError> {
        let path = self.record_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Removes every blob and unpacked root no record uses, and what
    /// interrupted pulls left (when no pull holds it). Returns the bytes
    /// freed. Anything in use by a running pull or copy is left alone.
    pub(crate) fn prune(&self) -> Result<u64, ImageError> {
        let records = self.records()?;
        let mut used = std::collections::HashSet::new();
        let mut roots = std::collections::HashSet::new();
        for record in &records {
            used.insert(record.manifest_digest.hex().to_owned());
            used.insert(record.config_digest.hex().to_owned());
            if let Some(index) = &record.index_digest {
                used.insert(index.hex().to_owned());
            }
            used.extend(record.layers.iter().map(|l| l.digest.hex().to_owned()));
            roots.insert(record.config_digest.hex().to_owned());
        }
        let mut freed = 0;
        let blobs = self.root.join("blobs/sha256");
        for name in names(&blobs)? {
            if used.contains(&name) {
                continue;
            }
            if let Some(_lock) = self.try_lock(&format!("blob-{name}"), true)? {
                freed += remove_counted(&blobs.join(&name))?;
            }
        }
        let rootfs = self.root.join("rootfs");
        for name in names(&rootfs)? {
            if roots.contains(&name) {
                continue;
            }
            if let Some(_lock) = self.try_lock(&format!("rootfs-{name}"), true)? {
                freed += remove_counted(&rootfs.join(&name))?;
            }
        }
        let tmp = self.root.join("tmp");
        for name in names(&tmp)? {
            let lock = name
                .strip_prefix("blob-")
                .map(|hex| format!("blob-{hex}"))
                .or_else(|| {
                    name.strip_prefix("rootfs-")
                        .map(|hex| format!("rootfs-{hex}"))
                });
            if let Some(lock) = lock
                && let Some(_lock) = self.try_lock(&lock, true)?
            {
                freed += remove_counted(&tmp.join(&name))?;
            }
        }
        Ok(freed)
    }
}

fn names(dir: &Path) -> Result<Vec<String>, ImageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `path` (a tree too) and returns its disk usage.
fn remove_counted(path: &Path) -> Result<u64, ImageError> {
    let bytes = disk_usage(path);
    let meta = fs::symlink_metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        make_removable(path);
        fs::remove_dir_all(path).map_err(io_at(path))?;
    } else {
        fs::remove_file(path).map_err(io_at(path))?;
    }
    Ok(bytes)
}

/// Grants the owner `rwx` on every directory of a tree (an unprivileged
/// unpack keeps that already; a root one may not have).
pub(crate) fn make_removable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    if meta.mode() & 0o700 != 0o700 {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() | 0o700));
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_removable(&entry.path());
        }
    }
}

/// The disk usage (allocated blocks) of a file or tree; hardlinked files
/// count once.
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    usage(path, &mut seen)
}

fn usage(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(entries) = fs::read_dir(path)
    {
        for entry in entries.flatten() {
            total += usage(&entry.path(), seen);
        }
    }
    total
}

/// Writes `bytes` to `path` atomically: a temporary sibling, synced, then
/// renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let tmp = path.with_extension(format!("tmp-{}", crate::util::unique_suffix()));
    let result = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_at(path)(e));
    }
    Ok(())
}

/// Opens `path` for reading and writing, creating it (mode 0600) if needed
/// and keeping what it holds; never through a symlink in its last
/// component. For the cache's lock files and partial downloads.
pub(super) fn open_private(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}
