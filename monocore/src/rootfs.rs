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

use crate::{MonocoreResult, vm::run_dir::RunDir};

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
    if final_dir.join("bin/busybox").is_file() {
        return Ok(final_dir);
    }
    let staging = cache.join(format!(".staging-{}", crate::util::unique_suffix()));
    let built = build_busybox_tree(&staging, busybox).and_then(|()| {
        fs::File::open(&staging)
            .and_then(|d| d.sync_all())
            .map_err(io_at(&staging))
    });
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
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
mod tests {
    use super::*;

    fn busybox() -> Option<PathBuf> {
        match find_busybox() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                None
            }
        }
    }

    #[test]
    fn template_holds_busybox_and_applets() {
        let Some(bb) = busybox() else { return };
        let cache = tempfile::tempdir().unwrap();
        let t = prepare_template_in(cache.path(), &bb).unwrap();
        assert!(t.join("bin/busybox").is_file());
        assert_eq!(
            fs::read_link(t.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert!(t.join("proc").is_dir() && t.join("dev").is_dir());
        assert_eq!(
            fs::metadata(t.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        // Idempotent: a second call returns the same tree, and leaves no staging dirs.
        assert_eq!(prepare_template_in(cache.path(), &bb).unwrap(), t);
        let names: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn concurrent_preparations_yield_one_complete_template() {
        let Some(bb) = busybox() else { return };
        let cache = tempfile::tempdir().unwrap();
        let results: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| prepare_template_in(cache.path(), &bb).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        let names: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "leftover staging dirs: {names:?}");
        assert_eq!(
            fs::read(results[0].join("bin/busybox")).unwrap().len(),
            fs::read(&bb).unwrap().len()
        );
    }

    #[test]
    fn run_copies_are_private_and_removed_on_drop() {
        let Some(bb) = busybox() else { return };
        let cache = tempfile::tempdir().unwrap();
        let t = prepare_template_in(cache.path(), &bb).unwrap();
        let runs = tempfile::tempdir().unwrap();
        let copy = RunRootfs::copy_of(&t, runs.path()).unwrap();
        let path = copy.path().to_path_buf();
        // A guest writing into its copy does not touch the template.
        fs::write(path.join("bin/busybox"), "trojan").unwrap();
        assert_ne!(fs::read(t.join("bin/busybox")).unwrap(), b"trojan");
        assert_eq!(
            fs::read_link(path.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        drop(copy);
        assert!(!path.exists());
        assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_copy_whose_process_died_is_removed_by_the_next_one() {
        let Some(bb) = busybox() else { return };
        let cache = tempfile::tempdir().unwrap();
        let t = prepare_template_in(cache.path(), &bb).unwrap();
        let runs = tempfile::tempdir().unwrap();
        let live = RunRootfs::copy_of(&t, runs.path()).unwrap();
        // What a killed process leaves: its copy and lock file, with no one
        // holding the lock (the kernel drops a dead process's locks).
        let dead = runs.path().join("run-dead");
        fs::create_dir_all(dead.join("guest/bin")).unwrap();
        fs::write(dead.join("lock"), b"").unwrap();
        let next = RunRootfs::copy_of(&t, runs.path()).unwrap();
        assert!(!dead.exists(), "a dead copy survived");
        assert!(live.path().join("bin/busybox").is_file());
        assert!(next.path().join("bin/busybox").is_file());
        assert_eq!(
            fs::metadata(next.path()).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn cache_dirs_are_created_private() {
        let base = tempfile::tempdir().unwrap();
        let cache = base.path().join("a/b/cache");
        ensure_private_dir(&cache).unwrap();
        let mode = fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        // Ours but group/world-writable: tightened, not refused.
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&cache).unwrap();
        let mode = fs::metadata(&cache).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn a_symlinked_cache_dir_is_refused() {
        // Another user pre-creating `/tmp/monocore-cache-<uid>` as a symlink
        // to a directory they control.
        let base = tempfile::tempdir().unwrap();
        let theirs = base.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        let cache = base.path().join("cache");
        symlink(&theirs, &cache).unwrap();
        let err = ensure_private_dir(&cache).unwrap_err();
        assert!(
            matches!(err, RootfsError::UnsafeCacheDir { ref reason, .. } if reason == "it is a symlink"),
            "{err}"
        );
        let err = prepare_template_in(&cache, Path::new("/bin/sh")).unwrap_err();
        assert!(matches!(err, RootfsError::UnsafeCacheDir { .. }), "{err}");
        let err = RunRootfs::copy_of(base.path(), &cache).unwrap_err();
        assert!(
            matches!(
                err,
                crate::MonocoreError::RootfsPrepare(RootfsError::UnsafeCacheDir { .. })
            ),
            "{err}"
        );
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    }

    #[test]
    fn a_cache_dir_owned_by_another_user_is_refused() {
        let base = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        let theirs = if unsafe { libc::geteuid() } == 0 {
            // As root: a directory pre-created by `nobody`.
            let dir = base.path().join("cache");
            fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            dir
        } else {
            // As a user: `/` is owned by root, i.e. by someone else.
            PathBuf::from("/")
        };
        let err = ensure_private_dir(&theirs).unwrap_err();
        assert!(
            matches!(err, RootfsError::UnsafeCacheDir { ref reason, .. } if reason.contains("owned by uid")),
            "{err}"
        );
    }

    #[test]
    fn a_cache_path_that_is_a_file_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn a_missing_busybox_says_how_to_install_it_and_debug_does_not() {
        // As the README shows them.
        let error = crate::MonocoreError::from(RootfsError::BusyboxNotFound {
            searched: BUSYBOX_PATHS.iter().map(PathBuf::from).collect(),
        });
        assert_eq!(
            error.to_string(),
            "no static busybox found at [\"/usr/bin/busybox\", \"/bin/busybox\"]: install it with \
             `apt-get install busybox-static` (or run ./scripts/setup.sh), or give the VM another \
             root filesystem (`monocore run --root DIR`)"
        );
        assert_eq!(
            format!("{error:?}"),
            "RootfsPrepare(BusyboxNotFound { searched: [\"/usr/bin/busybox\", \"/bin/busybox\"] })"
        );
    }

    #[test]
    fn missing_busybox_is_a_typed_error() {
        let cache = tempfile::tempdir().unwrap();
        let err = prepare_template_in(cache.path(), Path::new("/no/busybox")).unwrap_err();
        assert!(matches!(err, RootfsError::Io { .. }), "{err:?}");
    }
}
