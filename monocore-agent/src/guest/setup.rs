//! The agent's steps, in order; see the crate docs of `main.rs`.

use std::{
    ffi::{CStr, CString, OsStr},
    fmt,
    io::Read,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::Path,
    process::Child,
};

use super::{command::Program, sys};
use monocore_agent::{
    control::CONTROL_PORT,
    paths,
    report::{Step, escape},
    spec::{FLAG_CONTROL, FLAG_NO_MAIN, MAX_SPEC_LEN, Mount, Spec},
};

/// A step that failed, with the errno and what it was working on.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The step.
    pub step: Step,
    /// The errno.
    pub errno: i32,
    /// What the step was working on, escaped to printable ASCII.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.step {
            Step::Spec => "reading the run spec".to_owned(),
            Step::Root => "mounting the root filesystem".to_owned(),
            Step::Pivot => "switching into the root filesystem".to_owned(),
            Step::System => "mounting".to_owned(),
            Step::Mount { index } => format!("mounting mapped directory {index} at"),
            Step::Rlimit { resource } => format!("setting resource limit {resource}"),
            Step::Workdir => "changing to the working directory".to_owned(),
            Step::Exec => "executing".to_owned(),
            Step::Container => "setting up the container".to_owned(),
            Step::Bind { index } => format!("mounting bind {index} at"),
            Step::Resolve => "resolving the directory of".to_owned(),
            Step::Write => "writing".to_owned(),
            Step::Read => "reading".to_owned(),
            Step::Make => "making".to_owned(),
            Step::Stat => "describing".to_owned(),
        };
        write!(
            f,
            "{what} {}: {}",
            self.detail,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

pub(crate) fn fail(step: Step, detail: &[u8]) -> impl FnOnce(i32) -> Failure + use<> {
    let detail = escape(detail, 256);
    move |errno| Failure {
        step,
        errno,
        detail,
    }
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(5) // EIO
}

pub(crate) fn c_string(step: Step, bytes: &[u8]) -> Result<CString, Failure> {
    // The spec decoder refuses NUL bytes, so this cannot fail in practice.
    CString::new(bytes).map_err(|_| fail(step, bytes)(22))
}

/// What set-up leaves running.
pub(crate) struct Setup {
    pub(crate) spec: Spec,
    /// The main command, unless the spec has [`FLAG_NO_MAIN`].
    pub(crate) main: Option<Child>,
    /// The control channel's listening socket, if the spec asks for one.
    pub(crate) control: Option<OwnedFd>,
}

/// `Err((errno, path))` when `workdir` is not a directory in the guest.
pub(crate) fn workdir_error(workdir: &[u8]) -> Result<(), (i32, Vec<u8>)> {
    match std::fs::metadata(OsStr::from_bytes(workdir)) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err((20, workdir.to_vec())), // ENOTDIR
        Err(e) => Err((io_errno(&e), workdir.to_vec())),
    }
}

/// Runs every set-up step, opens the control channel and starts the main
/// command.
pub(crate) fn run() -> Result<Setup, Failure> {
    // While init's /dev (with the virtio console) is still mounted.
    super::console::fix_stdio().map_err(fail(Step::System, b"/dev/hvc0"))?;
    let spec = read_spec()?;
    enter_root(&spec.root_tag)?;
    mount_system()?;
    for (index, mount) in spec.mounts.iter().enumerate() {
        mount_share(index, mount)?;
    }
    if let Some(net) = &spec.net {
        super::net::configure(net)?;
    }
    let control = if spec.flags & FLAG_CONTROL != 0 {
        Some(
            sys::vsock_listen(CONTROL_PORT)
                .map_err(|e| fail(Step::System, b"vsock")(io_errno(&e)))?,
        )
    } else {
        None
    };
    let program = Program {
        exec: &spec.exec,
        args: &spec.args,
        env: &spec.env,
        workdir: &spec.workdir,
        rlimits: &spec.rlimits,
        user: None,
    };
    workdir_error(program.workdir()).map_err(|(errno, path)| fail(Step::Workdir, &path)(errno))?;
    let main = if spec.flags & FLAG_NO_MAIN == 0 {
        let child = program
            .command()
            .spawn()
            .map_err(|e| fail(Step::Exec, program.exec())(io_errno(&e)))?;
        Some(child)
    } else {
        None
    };
    Ok(Setup {
        spec,
        main,
        control,
    })
}

fn read_spec() -> Result<Spec, Failure> {
    let mut bytes = Vec::new();
    std::fs::File::open(paths::SPEC)
        .and_then(|f| {
            f.take(u64::try_from(MAX_SPEC_LEN).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| fail(Step::Spec, paths::SPEC.as_bytes())(io_errno(&e)))?;
    Spec::decode(&bytes).map_err(|e| Failure {
        step: Step::Spec,
        errno: 22, // EINVAL
        detail: e.to_string(),
    })
}

/// A mount namespace of our own, the root share mounted and made `/`; the
/// private root is detached.
fn enter_root(tag: &[u8]) -> Result<(), Failure> {
    let pivot = |e| fail(Step::Pivot, paths::NEW_ROOT.as_bytes())(e);
    sys::unshare_mounts().map_err(pivot)?;
    // libkrun's init made `/` shared; in our namespace nothing propagates.
    sys::mount_fs(None, c"/", None, sys::MS_REC | sys::MS_PRIVATE, None).map_err(pivot)?;
    let new_root = c_string(Step::Root, paths::NEW_ROOT.as_bytes())?;
    sys::mount_fs(
        Some(&c_string(Step::Root, tag)?),
        &new_root,
        Some(c"virtiofs"),
        0,
        None,
    )
    .map_err(fail(Step::Root, tag))?;
    std::env::set_current_dir(paths::NEW_ROOT).map_err(|e| pivot(io_errno(&e)))?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching
    // it leaves only the new root.
    sys::pivot_root(c".", c".").map_err(pivot)?;
    sys::detach(c".").map_err(pivot)?;
    std::env::set_current_dir("/").map_err(|e| pivot(io_errno(&e)))
}

/// Creates a mount point (and its parents) inside the guest's root.
fn mount_point(step: Step, path: &[u8]) -> Result<CString, Failure> {
    let dir = Path::new(OsStr::from_bytes(path));
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| fail(step, path)(io_errno(&e)))?;
    }
    c_string(step, path)
}

/// Creates a file mount point (and its parent directories) inside the
/// guest's root, unless something is there already.
pub(crate) fn mount_point_file(step: Step, path: &[u8]) -> Result<CString, Failure> {
    let file = Path::new(OsStr::from_bytes(path));
    if std::fs::symlink_metadata(file).is_err() {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(step, path)(io_errno(&e)))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)
            .map_err(|e| fail(step, path)(io_errno(&e)))?;
    }
    c_string(step, path)
}

fn mount_system() -> Result<(), Failure> {
    const STRICT: std::ffi::c_ulong =
        sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC | sys::MS_RELATIME;
    let table: [(&CStr, &[u8], std::ffi::c_ulong, Option<&CStr>); 5] = [
        (
            c"devtmpfs",
            b"/dev",
            sys::MS_NOSUID | sys::MS_RELATIME,
            None,
        ),
        (c"proc", b"/proc", STRICT, None),
        (c"sysfs", b"/sys", STRICT, None),
        (
            c"devpts",
            b"/dev/pts",
            sys::MS_NOSUID | sys::MS_NOEXEC | sys::MS_RELATIME,
            Some(c"mode=0620,ptmxmode=0666"),
        ),
        (c"tmpfs", b"/dev/shm", sys::MS_NOSUID | sys::MS_NODEV, None),
    ];
    for (fstype, target, flags, data) in table {
        let target = mount_point(Step::System, target)?;
        sys::mount_fs(Some(fstype), &target, Some(fstype), flags, data)
            .map_err(fail(Step::System, target.as_bytes()))?;
    }
    Ok(())
}

fn mount_share(index: usize, mount: &Mount) -> Result<(), Failure> {
    let step = Step::Mount {
        index: u32::try_from(index).unwrap_or(u32::MAX),
    };
    let target = mount_point(step, &mount.guest_path)?;
    let tag = c_string(step, &mount.tag)?;
    sys::mount_fs(Some(&tag), &target, Some(c"virtiofs"), 0, None)
        .map_err(fail(step, &mount.guest_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_step_and_the_errno() {
        let failure = fail(Step::Mount { index: 2 }, b"/data\n")(19);
        assert_eq!(
            failure.to_string(),
            "mounting mapped directory 2 at /data\\x0a: No such device (os error 19)"
        );
    }
}
