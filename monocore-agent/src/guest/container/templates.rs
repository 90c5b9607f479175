//! The system mounts every container of the VM gets, built once: a `/proc`,
//! a read-only `/sys`, and a `/dev` (a tmpfs with the basic device nodes,
//! a `devpts` instance at `/dev/pts`, and the pod's shared `/dev/shm`).
//!
//! They are mounted in the agent's namespace under one directory of the
//! VM's own `/dev` (a devtmpfs, not the root share, which no container's
//! tree holds), and each new container gets copies of them (`open_tree`
//! clones): a few system calls instead of a file system built each time,
//! which under an emulating hypervisor costs hundreds of milliseconds.
//! The copies are the same file systems: the VM's containers share its
//! processes (one `/proc`), its devices and terminals (one `/dev`, one
//! `devpts`) and `/dev/shm`, as they share its kernel. They are apart in
//! what they see of the file system, not a boundary between each other.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use monocore_agent::report::Step;

use super::sys::{
    self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, O_DIRECTORY,
    O_PATH,
};
use crate::guest::setup::{Failure, fail};

const EEXIST: i32 = 17;

/// The templates, by the container path each is copied to and its name in
/// the templates' directory.
pub(crate) const MOUNTS: [(&[u8], &CStr); 3] =
    [(b"/proc", c"proc"), (b"/sys", c"sys"), (b"/dev", c"dev")];

/// The device nodes of a container's `/dev` (runc's list), all `0666`.
const DEVICES: [(&CStr, (u32, u32)); 6] = [
    (c"null", (1, 3)),
    (c"zero", (1, 5)),
    (c"full", (1, 7)),
    (c"random", (1, 8)),
    (c"urandom", (1, 9)),
    (c"tty", (5, 0)),
];

/// Its symlinks.
const LINKS: [(&CStr, &CStr); 5] = [
    (c"ptmx", c"pts/ptmx"),
    (c"fd", c"/proc/self/fd"),
    (c"stdin", c"/proc/self/fd/0"),
    (c"stdout", c"/proc/self/fd/1"),
    (c"stderr", c"/proc/self/fd/2"),
];

/// `dir`/`name`.
pub(crate) fn path(dir: &CStr, name: &CStr) -> Result<CString, Failure> {
    let joined = [dir.to_bytes(), b"/", name.to_bytes()].concat();
    CString::new(joined).map_err(|_| fail(Step::Container, dir.to_bytes())(22))
}

fn make_dir(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), i32> {
    match sys::make_dir(dir, name, mode) {
        Ok(()) | Err(EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Builds the templates in `dir` (a directory made if missing; its parent
/// must exist), in the calling thread's mount namespace.
pub(crate) fn build(dir: &CStr) -> Result<(), Failure> {
    let failed = |what: &[u8]| fail(Step::Container, &[dir.to_bytes(), b"/", what].concat());
    match std::fs::create_dir(std::ffi::OsStr::from_bytes(dir.to_bytes())) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(b"")(e.raw_os_error().unwrap_or(5))),
    }
    let top = sys::open_path(dir, O_PATH | O_DIRECTORY).map_err(failed(b""))?;
    for (_, name) in MOUNTS {
        make_dir(top.as_fd(), name, 0o755).map_err(failed(name.to_bytes()))?;
    }
    const STRICT: u64 = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    mount_at(dir, c"proc", c"proc", &[], STRICT)?;
    mount_at(dir, c"sys", c"sysfs", &[], STRICT | MOUNT_ATTR_RDONLY)?;
    let dev = sys::new_mount(
        c"tmpfs",
        &[(c"mode", c"755"), (c"size", c"65536k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
    .map_err(failed(b"dev"))?;
    populate_dev(dev.as_fd()).map_err(failed(b"dev"))?;
    let point =
        sys::open_path(&path(dir, c"dev")?, O_PATH | O_DIRECTORY).map_err(failed(b"dev"))?;
    sys::attach(dev.as_fd(), point.as_fd()).map_err(failed(b"dev"))?;
    let dev_dir = path(dir, c"dev")?;
    mount_at(
        &dev_dir,
        c"pts",
        c"devpts",
        &[(c"mode", c"0620"), (c"ptmxmode", c"0666")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )?;
    mount_at(
        &dev_dir,
        c"shm",
        c"tmpfs",
        &[(c"mode", c"1777"), (c"size", c"65536k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

/// Mounts a new `fstype` on the directory `dir`/`name`.
fn mount_at(
    dir: &CStr,
    name: &CStr,
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    attr: u64,
) -> Result<(), Failure> {
    let target = path(dir, name)?;
    let failed = || fail(Step::Container, target.to_bytes());
    let point = sys::open_path(&target, O_PATH | O_DIRECTORY).map_err(failed())?;
    let mount = sys::new_mount(fstype, options, attr).map_err(failed())?;
    sys::attach(mount.as_fd(), point.as_fd()).map_err(failed())
}

fn populate_dev(dev: BorrowedFd<'_>) -> Result<(), i32> {
    for (name, numbers) in DEVICES {
        sys::make_char_device(dev, name, 0o666, numbers)?;
        // The agent's umask applied to mknod; the mode is set exactly.
        sys::set_mode(dev, name, 0o666)?;
    }
    for (name, target) in LINKS {
        sys::make_symlink(target, dev, name)?;
    }
    sys::make_dir(dev, c"pts", 0o755)?;
    // Its mode is the tmpfs mounted on it.
    sys::make_dir(dev, c"shm", 0o755)
}
