//! Minimal guest root filesystems built from Debian's `busybox-static`.
//!
//! For a program that just needs a root filesystem to run a command in,
//! [`RunRootfs::busybox`] is the one call: it prepares the default busybox
//! tree once in the [cache directory](cache_dir) and gives you a private
//! copy for one VM, removed when dropped. The `monocore` command uses it
//! when no `--root` is given; the tests and benchmarks use it to boot real
//! guests.
//!
//! ```no_run
//! use monocore::{rootfs::RunRootfs, vm::MicroVmConfig};
//! let rootfs = RunRootfs::busybox()?; // needs `busybox-static` installed
//! let config = MicroVmConfig::new(rootfs.path(), 256);
//! // … spawn a VM on it; the copy is removed when `rootfs` is dropped.
//! # Ok::<(), monocore::MonocoreError>(())
//! ```
//!
//! The parts, for other trees:
//!
//! * [`prepare_template`] builds a pristine template once, in a cache
//!   directory. It is idempotent and safe to run concurrently: the tree is
//!   built in a private temporary directory and moved into place with one
//!   atomic `rename`, so a reader sees either no template or a complete one.
//!   If two processes race, one rename wins and the other's tree is removed.
//! * [`RunRootfs::copy_of`] makes a private, writable copy of a template for
//!   one run, removed when dropped. A guest can write to its root filesystem
//!   (it is shared over virtio-fs), so runs never share one: untrusted code in
//!   one run cannot plant files that a later run would execute. A copy is
//!   held by a lock while its process lives, so one left behind by a killed
//!   process (`kill -9`, Ctrl-C without a handler) is removed by the next
//!   copy made in the same directory.

use std::{
    fs, io,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use crate::{
    MonocoreResult,
    vm::run_dir::{self, RunDir},
};

/// Where `busybox-static` installs its binary (Debian; `/bin` is merged into
/// `/usr/bin` from bookworm on).
pub const BUSYBOX_PATHS: [&str; 2] = ["/usr/bin/busybox", "/bin/busybox"];

/// The applets linked into `/bin` of a busybox rootfs.
const APPLETS: [&str; 48] = [
    "sh", "ash", "echo", "cat", "ls", "true", "false", "env", "uname", "pwd", "mkdir", "rm", "cp",
    "mv", "ln", "sleep", "mount", "umount", "id", "printf", "test", "[", "head", "tail", "wc",
    "grep", "sed", "awk", "sort", "uniq", "tr", "cut", "date", "dmesg", "hostname", "ps", "kill",
    "touch", "chmod", "stat", "df", "du", "find", "xargs", "yes", "seq", "poweroff", "ip",
];

/// Why a rootfs could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// No static busybox binary was found.
    #[error(
        "no static busybox found at {searched:?}: install it with `apt-get install busybox-static` \
         (or run ./scripts/setup.sh), or give the VM another root filesystem (`monocore run \
         --root DIR`)"
    )]
    BusyboxNotFound {
        /// The paths looked at.
        searched: Vec<PathBuf>,
    },
    /// A cache directory (or the parent of per-run copies) is not private to
    /// this user: another user could plant a template or swap a run
    /// directory for a symlink.
    #[error(
        "unsafe cache directory {}: {reason}; remove it or set MONOCORE_CACHE_DIR to a directory \
         only you can write",
        path.display()
    )]
    UnsafeCacheDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("cannot prepare the rootfs at {}", path.display())]
    Io {
        /// The path being written or read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The first static busybox found at [`BUSYBOX_PATHS`].
pub fn find_busybox() -> Result<PathBuf, RootfsError> {
    BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| RootfsError::BusyboxNotFound {
            searched: BUSYBOX_PATHS.iter().map(PathBuf::from).collect(),
        })
}

/// monocore's cache directory: `$MONOCORE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/monocore`, else `$HOME/.cache/monocore`, else
/// `<tmp>/monocore-cache-<uid>`.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("MONOCORE_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("monocore");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("monocore");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("monocore-cache-{uid}"))
}

/// Creates `dir` (mode 0700) if needed and checks that it is private: a real
/// directory (not a symlink), owned by this user, not writable by group or
/// others. Entries in such a directory cannot be created, renamed or
/// removed by another (non-root) user.
///
/// A directory of ours that is group- or world-writable is tightened (its
/// write bits for group and others are removed) rather than refused.
pub fn ensure_private_dir(dir: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let unsafe_dir = |reason: String| RootfsError::UnsafeCacheDir {
        path: dir.to_path_buf(),
        reason,
    };
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_at(dir)(e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(io_at(dir))?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symlink".to_owned()));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory".to_owned()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by this user (uid {uid})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o022)).map_err(io_at(dir))?;
    }
    Ok(())
}

/// Builds a busybox root filesystem tree at `dest`, which must not exist.
pub fn build_busybox_tree(dest: &Path, busybox: &Path) -> Result<(), RootfsError> {
    fs::create_dir(dest).map_err(io_at(dest))?;
    populate_busybox_tree(dest, busybox)
}

/// Fills the existing, empty directory `dest` with a busybox root filesystem:
/// `/bin/busybox` with applet symlinks (`sh`, `echo`, `cat`, `mount`, …), the
/// usual top-level directories, and a minimal `/etc`.
pub fn populate_busybox_tree(dest: &Path, busybox: &Path) -> Result<(), RootfsError> {
    for dir in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var", "usr",
    ] {
        let path = dest.join(dir);
        fs::create_dir(&path).map_err(io_at(&path))?;
    }
    for (link, target) in [("usr/bin", "../bin"), ("usr/sbin", "../sbin")] {
        let path = dest.join(link);
        symlink(target, &path).map_err(io_at(&path))?;
    }
    let tmp = dest.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).map_err(io_at(&tmp))?;

    let bin = dest.join("bin").join("busybox");
    fs::copy(busybox, &bin).map_err(io_at(&bin))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).map_err(io_at(&bin))?;
    for applet in APPLETS {
        let path = dest.join("bin").join(applet);
        symlink("busybox", &path).map_err(io_at(&path))?;
    }
    let init = dest.join("sbin").join("init");
    symlink("../bin/busybox", &init).map_err(io_at(&init))?;

    for (file, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/hostname", "monocore\n"),
        (
            "etc/fstab",
            "# /etc/fstab: static file system information.\n",
        ),
    ] {
        let path = dest.join(file);
        fs::write(&path, text).map_err(io_at(&path))?;
    }
    Ok(())
}

/// A cache key for the template: changes when busybox or monocore changes.
fn template_key(busybox: &Path) -> Result<String, RootfsError> {
    let meta = fs::metadata(busybox).map_err(io_at(busybox))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    Ok(format!(
        "busybox-{}-{}-{}",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        mtime.unwrap_or(0)
    ))
}

/// Prepares (once) the pristine busybox template in [`cache_dir`] and
/// returns its path. Safe to call from many processes at once.
pub fn prepare_template() -> Result<PathBuf, RootfsError> {
    prepare_template_in(&cache_dir(), &find_busybox()?)
}

/// [`prepare_template`] with an explicit cache directory and busybox.
pub fn prepare_template_in(cache: &Path, busybox: &Path) -> Result<PathBuf, RootfsError> {
    let final_dir = cache.join(template_key(busybox)?);
    // Before trusting anything in it: a template planted by another user
    // would become the guest's root.
    ensure_private_dir(cache)?;
    sweep_staging(cache);
    if final_dir.join("bin/busybox").is_file() {
        return Ok(final_dir);
    }
    let staging = cache.join(run_dir::owned_name(STAGING_PREFIX));
    // Held while the tree is built: a sweep never removes a live build.
    let built = fs::create_dir(&staging)
        .and_then(|()| fs::File::open(&staging))
        .map_err(io_at(&staging))
        .and_then(|dir| {
            rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockShared)
                .map_err(|e| io_at(&staging)(e.into()))?;
            populate_busybox_tree(&staging, busybox)?;
            dir.sync_all().map_err(io_at(&staging))?;
            Ok(dir)
        });
    let _held = match built {
        Ok(dir) => dir,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    match fs::rename(&staging, &final_dir) {
        Ok(()) => Ok(final_dir),
        // Another process won the race: its complete tree is in place.
        Err(_) if final_dir.join("bin/busybox").is_file() => {
            let _ = fs::remove_dir_all(&staging);
            Ok(final_dir)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(io_at(&final_dir)(e))
        }
    }
}

/// The name prefix of a template being built: `.staging-<pid>-<suffix>`.
const STAGING_PREFIX: &str = ".staging-";

/// Removes the staging directories of template builds whose process died
/// (`kill -9` during the build): the maker's pid is gone and nobody holds
/// the directory's lock. A live build's directory is never removed.
pub fn sweep_staging(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && run_dir::maker_is_gone(name, STAGING_PREFIX)
            && run_dir::lock_is_free(&entry.path())
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A private, writable copy of a rootfs template for one run; removed when
/// dropped.
#[derive(Debug)]
pub struct RunRootfs {
    /// The copy: `guest/` in the run directory.
    root: PathBuf,
    // `run-<suffix>/` with its lock (held while this lives) and the copy;
    // removed on drop.
    _run: RunDir,
}

impl RunRootfs {
    /// A private copy of the default busybox root filesystem, for one VM:
    /// the template is prepared once ([`prepare_template`]), then copied
    /// ([`copy_of`](Self::copy_of)) into `runs` in the
    /// [cache directory](cache_dir). The copy is removed when this is
    /// dropped (or, if the process is killed first, by the next call).
    ///
    /// Needs a static busybox (Debian: `apt-get install busybox-static`);
    /// without one, the error says so
    /// ([`RootfsError::BusyboxNotFound`] in [`MonocoreError::RootfsPrepare`](crate::MonocoreError::RootfsPrepare)).
    pub fn busybox() -> MonocoreResult<Self> {
        let template = prepare_template()?;
        Self::copy_of(&template, &cache_dir().join("runs"))
    }

    /// Copies `template` (regular files, directories and symlinks, the links
    /// copied as links, never followed) into a new private directory under
    /// `parent`. `parent` is created if needed and must be private to this
    /// user (see [`ensure_private_dir`]): in a shared directory another user
    /// could swap the new directory for a symlink and redirect the copy.
    /// Copies in `parent` whose process has died are removed first.
    pub fn copy_of(template: &Path, parent: &Path) -> MonocoreResult<Self> {
        let run = RunDir::create(parent)?;
        let root = run.guest_root();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).map_err(io_at(&root))?;
        copy_tree(template, &root)?;
        Ok(Self { root, _run: run })
    }

    /// The copy's path.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl AsRef<Path> for RunRootfs {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), RootfsError> {
    for entry in fs::read_dir(from).map_err(io_at(from))? {
        let entry = entry.map_err(io_at(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io_at(&src))?;
        if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(io_at(&src))?;
            symlink(&target, &dst).map_err(io_at(&dst))?;
        } else if kind.is_dir() {
            fs::create_dir(&dst).map_err(io_at(&dst))?;
            let mode = entry.metadata().map_err(io_at(&src))?.permissions().mode();
            copy_tree(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).map_err(io_at(&dst))?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(io_at(&dst))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
