//! The default root filesystem: a busybox tree from Debian's
//! `busybox-static`, prepared once as a template in the cache directory.

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use crate::{
    error::{RootfsError, rootfs::io_at},
    state::{
        cache_dir, ensure_private_dir,
        sweep::{lock_is_free, maker_is_gone, owned_name},
    },
};

/// Where `busybox-static` installs its binary (Debian; `/bin` is merged into
/// `/usr/bin` from bookworm on).
pub const BUSYBOX_PATHS: [&str; 2] = ["/usr/bin/busybox", "/bin/busybox"];

/// The applets linked into `/bin` of a busybox rootfs (the last six for
/// networking: a client, a server, DNS lookups, a bound on a command).
const APPLETS: [&str; 54] = [
    "sh", "ash", "echo", "cat", "ls", "true", "false", "env", "uname", "pwd", "mkdir", "rm", "cp",
    "mv", "ln", "sleep", "mount", "umount", "id", "printf", "test", "[", "head", "tail", "wc",
    "grep", "sed", "awk", "sort", "uniq", "tr", "cut", "date", "dmesg", "hostname", "ps", "kill",
    "touch", "chmod", "stat", "df", "du", "find", "xargs", "yes", "seq", "poweroff", "ip", "wget",
    "nc", "nslookup", "httpd", "ping", "timeout",
];

/// Bumped when what a template holds changes (not only busybox itself), so
/// that a cached template of an older layout is not reused.
const TEMPLATE_REVISION: u32 = 2;

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
        "busybox-{}-r{TEMPLATE_REVISION}-{}-{}",
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
    let staging = cache.join(owned_name(STAGING_PREFIX));
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
        if is_dir && maker_is_gone(name, STAGING_PREFIX) && lock_is_free(&entry.path()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
