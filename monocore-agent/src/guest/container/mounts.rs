//! A new container, built in the calling (session) thread, which the
//! container's first process is then forked from:
//!
//! 1. the thread gets a mount namespace (and root and working directory) of
//!    its own, every mount in it private;
//! 2. the container's root (a directory of the VM) is bind mounted onto
//!    itself, with what is mounted below it;
//! 3. `/proc` and a read-only `/sys` (copies of the VM's templates), and a
//!    `/dev` of its own, with its own `/dev/pts` and the pod's `/dev/shm`,
//!    made ahead ([`super::templates`]);
//! 4. each bind in order, its mount point resolved (and created) inside the
//!    root ([`super::resolve`]), read-only ones read-only recursively;
//! 5. the root made read-only if asked (its submounts keep their modes);
//! 6. `pivot_root` into it, the VM's tree detached.
//!
//! Every mount is made through file descriptors (the `open_tree`/
//! `move_mount` API): a path is resolved once, where it is checked.

use std::{
    ffi::{CStr, CString},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

use monocore_agent::{
    control::{Bind, ContainerSetup},
    report::Step,
};

use super::{
    resolve::{self, Kind},
    sys::{self, MOUNT_ATTR_RDONLY, O_DIRECTORY, O_PATH, O_RDONLY},
    templates,
};
use crate::guest::{
    setup::{Failure, c_string, fail},
    sys::{MS_PRIVATE, MS_REC, detach, mount_fs, pivot_root},
};

/// A container the calling thread is now in.
pub(crate) struct Entered {
    /// Its mount namespace (`/proc/thread-self/ns/mnt`, opened by the
    /// thread that made it: no pid is involved).
    pub(crate) ns: OwnedFd,
    /// Its root directory.
    pub(crate) root: OwnedFd,
}

const EINVAL: i32 = 22;

fn at(what: &[u8]) -> impl FnOnce(i32) -> Failure + use<> {
    fail(Step::Container, what)
}

/// Builds the container `setup` and moves the calling thread into it;
/// `templates` holds the VM's system mounts to copy, `dev` is the
/// container's own `/dev` (see [`super::templates`]).
pub(crate) fn enter_new(
    setup: &ContainerSetup,
    templates: &CStr,
    dev: OwnedFd,
) -> Result<Entered, Failure> {
    sys::unshare_thread_mounts().map_err(at(b"unshare"))?;
    // Nothing mounted here propagates anywhere, nor arrives from anywhere.
    mount_fs(None, c"/", None, MS_REC | MS_PRIVATE, None).map_err(at(b"/"))?;
    let root = bind_root(&setup.root)?;
    system_mounts(root.as_fd(), templates, dev)?;
    for (index, bind) in setup.binds.iter().enumerate() {
        bind_one(root.as_fd(), index, bind)?;
    }
    if setup.readonly_root {
        sys::set_mount_attr(root.as_fd(), MOUNT_ATTR_RDONLY, false).map_err(at(&setup.root))?;
    }
    let ns = sys::open_path(c"/proc/thread-self/ns/mnt", O_RDONLY).map_err(at(b"ns/mnt"))?;
    switch_root(root.as_fd())?;
    Ok(Entered { ns, root })
}

/// The container's root: `path` bind mounted onto itself (recursively), as
/// a mount point `pivot_root` can switch to.
fn bind_root(path: &[u8]) -> Result<OwnedFd, Failure> {
    let dir = sys::open_path(&c_string(Step::Container, path)?, O_PATH | O_DIRECTORY)
        .map_err(at(path))?;
    let tree = sys::clone_tree(dir.as_fd()).map_err(at(path))?;
    sys::attach(tree.as_fd(), dir.as_fd()).map_err(at(path))?;
    // The tree's fd now names the attached bind mount's root.
    Ok(tree)
}

/// The system mounts: copies of the VM's templates in `templates`, and the
/// container's `dev` (see [`super::templates`]).
fn system_mounts(root: BorrowedFd<'_>, templates: &CStr, dev: OwnedFd) -> Result<(), Failure> {
    for (target, name) in templates::MOUNTS {
        let template = sys::open_path(&templates::path(templates, name)?, O_PATH | O_DIRECTORY)
            .map_err(at(target))?;
        let point = resolve::mount_point(root, target, Kind::Dir).map_err(at(target))?;
        let tree = sys::clone_tree(template.as_fd()).map_err(at(target))?;
        sys::attach(tree.as_fd(), point.as_fd()).map_err(at(target))?;
    }
    let point = resolve::mount_point(root, b"/dev", Kind::Dir).map_err(at(b"/dev"))?;
    sys::attach(dev.as_fd(), point.as_fd()).map_err(at(b"/dev"))
}

/// Mounts bind `index`: its source as the VM sees it, on its target
/// resolved in the container's root (created as a file or a directory, as
/// the source is).
fn bind_one(root: BorrowedFd<'_>, index: usize, bind: &Bind) -> Result<(), Failure> {
    let step = Step::Bind {
        index: u32::try_from(index).unwrap_or(u32::MAX),
    };
    let source_failed = |errno| fail(step, &[b"source ", bind.source.as_slice()].concat())(errno);
    let target_failed = |errno| fail(step, &[b"target ", bind.target.as_slice()].concat())(errno);
    let path = CString::new(bind.source.as_slice()).map_err(|_| source_failed(EINVAL))?;
    let source = sys::open_path(&path, O_PATH).map_err(source_failed)?;
    let is_dir = sys::metadata(source.as_fd())
        .map(|meta| meta.is_dir())
        .map_err(source_failed)?;
    let kind = if is_dir { Kind::Dir } else { Kind::File };
    let point = resolve::mount_point(root, &bind.target, kind).map_err(target_failed)?;
    let tree = sys::clone_tree(source.as_fd()).map_err(target_failed)?;
    if bind.readonly {
        sys::set_mount_attr(tree.as_fd(), MOUNT_ATTR_RDONLY, true).map_err(target_failed)?;
    }
    sys::attach(tree.as_fd(), point.as_fd()).map_err(target_failed)
}

/// `pivot_root` into `root`; the tree above it is detached, and the
/// thread's working directory is the new `/`.
fn switch_root(root: BorrowedFd<'_>) -> Result<(), Failure> {
    sys::change_dir(root).map_err(at(b"pivot_root"))?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching
    // it leaves only the container's tree.
    pivot_root(c".", c".").map_err(at(b"pivot_root"))?;
    detach(c".").map_err(at(b"pivot_root"))?;
    std::env::set_current_dir("/").map_err(|e| at(b"/")(e.raw_os_error().unwrap_or(5)))
}
