//! The system mounts of the VM's containers, made ahead so that a new
//! container gets them with a few system calls instead of file systems
//! built while its caller waits (under an emulating hypervisor, hundreds of
//! milliseconds):
//!
//! - `/proc` and a read-only `/sys` are built once, in the agent's
//!   namespace under one directory of the VM's own `/dev` (a devtmpfs, not
//!   the root share, which no container's tree holds), and each container
//!   gets a copy (an `open_tree` clone: its own mount of the same file
//!   system; containers share the VM's processes and kernel anyway);
//! - the pod's `/dev/shm` is one tmpfs there, shared by every container;
//! - each container gets a `/dev` of its own: a tmpfs with the basic device
//!   nodes, a `devpts` instance of its own at `/dev/pts` and the pod's
//!   `/dev/shm`, built as a detached tree ([`dev_tree`]). Two are kept
//!   spare, made up by a thread at the lowest priority (`SCHED_IDLE`) a
//!   second after a container took one, so that they cost the containers'
//!   own processes nothing.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError,
    atomic::{AtomicU64, Ordering},
};

use monocore_agent::report::Step;

use super::sys::{
    self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, O_DIRECTORY,
    O_PATH,
};
use crate::guest::{
    setup::{Failure, fail},
    sys::detach,
};

const EEXIST: i32 = 17;

/// The templates, by the container path each is copied to and its name in
/// the templates' directory.
pub(crate) const MOUNTS: [(&[u8], &CStr); 2] = [(b"/proc", c"proc"), (b"/sys", c"sys")];

/// The pod's `/dev/shm`, in the templates' directory.
const SHM: &CStr = c"shm";
/// Where `/dev` trees are built, in the templates' directory.
const SPARE: &CStr = c"spare";

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
    for name in [c"proc", c"sys", SHM, SPARE] {
        make_dir(top.as_fd(), name, 0o755).map_err(failed(name.to_bytes()))?;
    }
    const STRICT: u64 = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    mount_at(dir, c"proc", c"proc", &[], STRICT)?;
    mount_at(dir, c"sys", c"sysfs", &[], STRICT | MOUNT_ATTR_RDONLY)?;
    mount_at(
        dir,
        SHM,
        c"tmpfs",
        &[(c"mode", c"1777"), (c"size", c"65536k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

/// A `/dev` for one container, detached (see the module's docs), built in
/// `dir`'s `spare/dev-<n>` and taken off it; `dir`'s templates must be
/// built. Only the container that attaches it has it.
pub(crate) fn dev_tree(dir: &CStr, n: u64) -> Result<OwnedFd, Failure> {
    let spare = path(dir, SPARE)?;
    let name = CString::new(format!("dev-{n}")).map_err(|_| fail(Step::Container, b"dev")(22))?;
    let at = path(&spare, &name)?;
    let failed = || fail(Step::Container, at.to_bytes());
    let spare_fd = sys::open_path(&spare, O_PATH | O_DIRECTORY).map_err(failed())?;
    make_dir(spare_fd.as_fd(), &name, 0o755).map_err(failed())?;
    let built = build_dev_at(dir, &at);
    // The tree is detached: its mount point goes, whatever happened.
    let _ = detach(&at);
    let _ = std::fs::remove_dir(std::ffi::OsStr::from_bytes(at.to_bytes()));
    built
}

fn build_dev_at(dir: &CStr, at: &CStr) -> Result<OwnedFd, Failure> {
    let failed = || fail(Step::Container, at.to_bytes());
    let dev = sys::new_mount(
        c"tmpfs",
        &[(c"mode", c"755"), (c"size", c"65536k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
    .map_err(failed())?;
    populate_dev(dev.as_fd()).map_err(failed())?;
    let point = sys::open_path(at, O_PATH | O_DIRECTORY).map_err(failed())?;
    sys::attach(dev.as_fd(), point.as_fd()).map_err(failed())?;
    mount_at(
        at,
        c"pts",
        c"devpts",
        &[(c"mode", c"0620"), (c"ptmxmode", c"0666")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )?;
    let shm = sys::open_path(&path(dir, SHM)?, O_PATH | O_DIRECTORY).map_err(failed())?;
    let shm = sys::clone_tree(shm.as_fd()).map_err(failed())?;
    let shm_point = sys::open_path(&path(at, SHM)?, O_PATH | O_DIRECTORY).map_err(failed())?;
    sys::attach(shm.as_fd(), shm_point.as_fd()).map_err(failed())?;
    let top = sys::open_path(at, O_PATH | O_DIRECTORY).map_err(failed())?;
    sys::clone_tree(top.as_fd()).map_err(failed())
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

/// How long after a container took the spare `/dev` the next is built.
const REFILL_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// How many `/dev` trees are kept spare: one for each of two containers
/// started in a row.
const SPARES: usize = 2;

/// The spare `/dev` trees, and the number of the next one built.
#[derive(Default)]
pub(crate) struct DevSpares {
    spares: Arc<Mutex<Vec<OwnedFd>>>,
    next: Arc<AtomicU64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DevSpares {
    /// A `/dev` for a new container: a spare one, or one built now; the
    /// spares are then made up again by a thread of the idle scheduling
    /// class.
    /// Called in the agent's namespace (where that thread starts too), with
    /// `dir`'s templates built.
    pub(crate) fn take(&self, dir: &CStr) -> Result<OwnedFd, Failure> {
        let spare = lock(&self.spares).pop();
        let tree = match spare {
            Some(tree) => tree,
            None => dev_tree(dir, self.next.fetch_add(1, Ordering::Relaxed))?,
        };
        let (spares, next, dir) = (
            Arc::clone(&self.spares),
            Arc::clone(&self.next),
            dir.to_owned(),
        );
        // Without the thread, a later container builds its own.
        let _ = std::thread::Builder::new()
            .name("dev-spare".into())
            .spawn(move || {
                let _ = sys::lowest_priority();
                // Not while the container just made starts its process:
                // the guest kernel does not preempt a system call, so even
                // an idle-class thread's mounts would hold it back.
                std::thread::sleep(REFILL_DELAY);
                while lock(&spares).len() < SPARES {
                    let Ok(tree) = dev_tree(&dir, next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    lock(&spares).push(tree);
                }
            });
        Ok(tree)
    }
}
