//! Unpacking hostile layers into a root directory.
//!
//! Each layer is a (gzip, zstd or un-compressed) tar stream, read by a
//! bounded reader of our own ([`tar`]), and applied entry by entry with the
//! file operations of [`inroot`](crate::rootfs::inroot), which never leave the root:
//!
//! * paths are cleaned lexically (`/`-rooted, `..` never above the root),
//!   and their parent is resolved with `openat2(RESOLVE_IN_ROOT)`, so a
//!   symlink planted by an earlier entry or layer (`etc -> /etc`,
//!   `x -> ../../..`) is resolved as the guest would see it, inside the
//!   root; the entry itself is created with `O_NOFOLLOW` / `*at` calls;
//! * a hardlink's target is resolved the same way, and only a
//!   non-directory already in the root can be linked (`/etc/passwd` means
//!   the image's own `etc/passwd`);
//! * whiteouts (`.wh.NAME`) remove what lower layers put at `NAME`; an
//!   opaque marker (`.wh..wh..opq`) removes everything lower layers put in
//!   its directory; neither is written to the root;
//! * device nodes are never created (they are counted and skipped: the
//!   guest's `/dev` is its own devtmpfs); FIFOs are;
//! * modes (with setuid/setgid/sticky) and modification times are kept.
//!   Ownership is kept when the process is root (the cache directory is
//!   private, mode 0700, so no other host user can reach a set-uid file in
//!   it); otherwise every file is owned by the user who pulled, and
//!   directories get owner `rwx` and files owner `rw` on top of their
//!   mode, so that the cache can be read, copied and removed;
//! * extended attributes (file capabilities, SELinux labels) are dropped;
//! * sizes are bounded: the uncompressed bytes and the entries of all
//!   layers together ([`Limits`]), so a decompression bomb ends in
//!   [`ImageError::UnpackLimit`](super::ImageError::UnpackLimit) after at
//!   most that much work.
//!
//! The parts: [`tar`] reads entries, [`inroot`](crate::rootfs::inroot) does the file operations
//! inside the root, `whiteout` removes what lower layers put, `metadata`
//! sets owners, modes and times, and this file applies a layer.

mod metadata;
pub(crate) mod tar;
mod whiteout;

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    fs::File,
    io::{self, Read, Write},
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::Path,
};

use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest, Sha256};

use self::{
    metadata::{set_time_at, times},
    tar::{Header, Kind, TarError, TarReader},
};
use super::ImageError;
use crate::rootfs::inroot::{self, InRootPath, Root};

/// Bounds on what the layers of one image may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of all layers' tar streams together. Default:
    /// 16 GiB.
    pub max_bytes: u64,
    /// Entries of all layers together. Default: 1 000 000.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// How a layer's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a layer media type, if monocore can unpack it.
    pub(crate) fn of_media_type(media_type: &str) -> Option<Self> {
        let base = media_type
            .strip_prefix("application/vnd.oci.image.layer.nondistributable.v1.")
            .or_else(|| media_type.strip_prefix("application/vnd.oci.image.layer.v1."));
        match base {
            Some("tar") => Some(Self::None),
            Some("tar+gzip") => Some(Self::Gzip),
            Some("tar+zstd") => Some(Self::Zstd),
            _ => match media_type {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
                | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Self::Gzip),
                "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::None),
                _ => None,
            },
        }
    }
}

/// What unpacking an image did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Uncompressed tar bytes read.
    pub bytes: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
}

/// Counts and hashes the uncompressed stream, and stops it at the bound.
struct Metered<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, LimitHit));
        }
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// The marker inside the I/O error of a stream stopped at its bound.
#[derive(Debug)]
struct LimitHit;

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unpack limit reached")
    }
}

impl std::error::Error for LimitHit {}

/// Unpacks the layers of one image, in order, into one root.
pub(crate) struct Unpacker {
    root: Root,
    privileged: bool,
    limits: Limits,
    stats: UnpackStats,
    /// Directory modification times, applied once every layer is in.
    dir_times: HashMap<InRootPath, i64>,
}

impl Unpacker {
    pub(crate) fn new(root: &Path, limits: Limits) -> io::Result<Self> {
        Ok(Self {
            root: Root::open(root)?,
            privileged: rustix::process::geteuid().is_root(),
            limits,
            stats: UnpackStats::default(),
            dir_times: HashMap::new(),
        })
    }

    /// Applies one layer from `compressed`, checking that its uncompressed
    /// stream has the sha256 `diff_id`.
    pub(crate) fn apply(
        &mut self,
        compressed: impl Read,
        compression: Compression,
        layer: &str,
        diff_id: &str,
    ) -> Result<(), ImageError> {
        let io_err = |source: io::Error| ImageError::BadArchive {
            layer: layer.to_owned(),
            offset: 0,
            reason: source.to_string(),
        };
        let stream: Box<dyn Read> = match compression {
            Compression::None => Box::new(compressed),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(compressed)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(compressed).map_err(io_err)?)
            }
        };
        let metered = Metered {
            inner: io::BufReader::with_capacity(256 << 10, stream),
            hasher: Sha256::new(),
            read: 0,
            limit: self.limits.max_bytes.saturating_sub(self.stats.bytes),
        };
        let mut reader = TarReader::new(metered);
        let mut layer_state = Layer {
            layer,
            written: HashSet::new(),
        };
        let result = self.entries(&mut reader, &mut layer_state);
        let mut metered = reader.into_inner();
        let drained = result.and_then(|()| {
            // What follows the archive's end counts towards its diff ID.
            io::copy(&mut metered, &mut io::sink())
                .map(drop)
                .map_err(|e| tar_error(layer, 0, TarError::Io(e), &self.limits))
        });
        self.stats.bytes += metered.read;
        drained?;
        let actual = format!("sha256:{}", super::digest::hex(&metered.hasher.finalize()));
        if actual != diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("the uncompressed content of layer {layer}"),
                expected: diff_id.to_owned(),
                actual,
            });
        }
        Ok(())
    }

    fn entries<R: Read>(
        &mut self,
        reader: &mut TarReader<Metered<R>>,
        layer: &mut Layer<'_>,
    ) -> Result<(), ImageError> {
        loop {
            let header = match reader.next_entry() {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(()),
                Err(e) => return Err(tar_error(layer.layer, reader.offset(), e, &self.limits)),
            };
            self.stats.entries += 1;
            if self.stats.entries > self.limits.max_entries {
                return Err(ImageError::UnpackLimit {
                    layer: layer.layer.to_owned(),
                    what: "entries",
                    limit: self.limits.max_entries,
                });
            }
            let offset = reader.offset();
            self.entry(&header, reader, layer).map_err(|e| match e {
                EntryError::Tar(e) => tar_error(layer.layer, offset, e, &self.limits),
                EntryError::Io(e) => ImageError::Entry {
                    layer: layer.layer.to_owned(),
                    entry: String::from_utf8_lossy(&header.path).into_owned(),
                    reason: e.to_string(),
                },
                EntryError::Refused(reason) => ImageError::Entry {
                    layer: layer.layer.to_owned(),
                    entry: String::from_utf8_lossy(&header.path).into_owned(),
                    reason,
                },
            })?;
        }
    }

    fn entry<R: Read>(
        &mut self,
        header: &Header,
        reader: &mut TarReader<R>,
        layer: &mut Layer<'_>,
    ) -> Result<(), EntryError> {
        // The root itself: keep monocore's own mode for it.
        let Some(path) = InRootPath::clean(&header.path) else {
            return Ok(());
        };
        let name = path.name().as_bytes();
        if name == b".wh..wh..opq" {
            return self.opaque(&path, layer);
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            return self.whiteout(&path, hidden, layer);
        }
        let parent = self.root.parent_dir(&path)?;
        let name = path.name();
        let existing = inroot::stat_at(&parent, name)?;
        let existing_dir = existing.as_ref().is_some_and(|s| {
            rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
        });
        if header.kind == Kind::Dir && existing_dir {
            let dir = open_child_dir(&parent, name)?;
            self.set_owner_mode(&dir, header, true)?;
            self.dir_times.insert(path.clone(), header.mtime);
            layer.written.insert(path);
            return Ok(());
        }
        if existing.is_some() {
            inroot::remove_all_at(&parent, name)?;
        }
        match header.kind {
            Kind::Dir => {
                rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))?;
                let dir = open_child_dir(&parent, name)?;
                self.set_owner_mode(&dir, header, true)?;
                self.dir_times.insert(path.clone(), header.mtime);
            }
            Kind::File => self.regular_file(&parent, name, header, reader)?,
            Kind::Symlink => {
                rustix::fs::symlinkat(OsStr::from_bytes(&header.link), &parent, name)?;
                self.set_owner_at(&parent, name, header)?;
                set_time_at(&parent, name, header.mtime)?;
            }
            Kind::HardLink => self.hardlink(&path, &parent, header)?,
            Kind::Fifo => self.fifo(&parent, name, header)?,
            Kind::CharDevice | Kind::BlockDevice => {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
        }
        layer.written.insert(path);
        Ok(())
    }

    /// A regular file, created (never opened through a symlink) and filled.
    fn regular_file<R: Read>(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        header: &Header,
        reader: &mut TarReader<R>,
    ) -> Result<(), EntryError> {
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )?;
        let mut file = File::from(fd);
        copy_data(reader, &mut file)?;
        let fd = OwnedFd::from(file);
        self.set_owner_mode(&fd, header, false)?;
        rustix::fs::futimens(&fd, &times(header.mtime))?;
        Ok(())
    }

    /// A FIFO (device nodes, by contrast, are never made).
    fn fifo(&self, parent: &OwnedFd, name: &OsStr, header: &Header) -> Result<(), EntryError> {
        rustix::fs::mknodat(
            parent,
            name,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )?;
        self.set_owner_at(parent, name, header)?;
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(self.file_mode(header.mode)),
            AtFlags::empty(),
        )?;
        set_time_at(parent, name, header.mtime)?;
        Ok(())
    }

    fn hardlink(
        &self,
        path: &InRootPath,
        parent: &OwnedFd,
        header: &Header,
    ) -> Result<(), EntryError> {
        let target = InRootPath::clean(&header.link)
            .ok_or_else(|| EntryError::Refused("a hardlink to the root directory".into()))?;
        if &target == path {
            return Err(EntryError::Refused("a hardlink to itself".into()));
        }
        let fd = self.root.open_path(&target.relative()).map_err(|e| {
            EntryError::Refused(format!(
                "its hardlink target {:?} is not in the root: {e}",
                target.relative()
            ))
        })?;
        let stat = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
            return Err(EntryError::Refused("a hardlink to a directory".into()));
        }
        let name = path.name();
        match rustix::fs::linkat(&fd, "", parent, name, AtFlags::EMPTY_PATH) {
            Ok(()) => Ok(()),
            // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the descriptor's
            // /proc link does not.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => {
                let proc_link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc_link.as_str(),
                    parent,
                    name,
                    AtFlags::SYMLINK_FOLLOW,
                )?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the directories' modification times (deepest first) and
    /// returns what was unpacked.
    pub(crate) fn finish(self) -> UnpackStats {
        let mut dirs: Vec<_> = self.dir_times.iter().collect();
        dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.relative()));
        for (path, mtime) in dirs {
            if let Ok(fd) = self.root.open_dir(&path.relative()) {
                let _ = rustix::fs::futimens(&fd, &times(*mtime));
            }
        }
        self.stats
    }
}

struct Layer<'a> {
    layer: &'a str,
    /// What this layer wrote: whiteouts do not remove it.
    written: HashSet<InRootPath>,
}

enum EntryError {
    Tar(TarError),
    Io(io::Error),
    Refused(String),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<rustix::io::Errno> for EntryError {
    fn from(e: rustix::io::Errno) -> Self {
        Self::Io(e.into())
    }
}

fn tar_error(layer: &str, offset: u64, error: TarError, limits: &Limits) -> ImageError {
    match error {
        TarError::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<LimitHit>()) => {
            ImageError::UnpackLimit {
                layer: layer.to_owned(),
                what: "bytes",
                limit: limits.max_bytes,
            }
        }
        TarError::Io(e) => ImageError::BadArchive {
            layer: layer.to_owned(),
            offset,
            reason: e.to_string(),
        },
        TarError::Format { offset, reason } => ImageError::BadArchive {
            layer: layer.to_owned(),
            offset,
            reason,
        },
    }
}

fn open_child_dir(parent: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

fn copy_data<R: Read>(reader: &mut TarReader<R>, file: &mut File) -> Result<(), EntryError> {
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let n = reader.read_data(&mut buf).map_err(EntryError::Tar)?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(buf.get(..n).unwrap_or_default())?;
    }
}

#[cfg(test)]
mod tests;
