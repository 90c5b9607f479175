//! The agent's steps, in order; see the crate docs of `main.rs`.

use std::{
    convert::Infallible,
    ffi::{CStr, CString, OsStr},
    fmt,
    io::Read,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::Path,
    process::Command,
};

use super::sys;
use crate::{
    paths,
    report::{Step, escape},
    spec::{MAX_SPEC_LEN, Mount, Spec},
};

/// The `PATH` searched when the command's environment has none (Docker's
/// default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
        };
        write!(
            f,
            "{what} {}: {}",
            self.detail,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

fn fail(step: Step, detail: &[u8]) -> impl FnOnce(i32) -> Failure {
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

fn c_string(step: Step, bytes: &[u8]) -> Result<CString, Failure> {
    // The spec decoder refuses NUL bytes, so this cannot fail in practice.
    CString::new(bytes).map_err(|_| fail(step, bytes)(22))
}

/// Runs every step and executes the command; returns only on failure.
/// `on_ready` runs just before the command is executed.
pub(crate) fn run(on_ready: impl FnOnce()) -> Result<Infallible, Failure> {
    // While init's /dev (with the virtio console) is still mounted.
    super::console::fix_stdio().map_err(fail(Step::System, b"/dev/hvc0"))?;
    let spec = read_spec()?;
    enter_root(&spec.root_tag)?;
    mount_system()?;
    for (index, mount) in spec.mounts.iter().enumerate() {
        mount_share(index, mount)?;
    }
    for limit in &spec.rlimits {
        let step = Step::Rlimit {
            resource: limit.resource,
        };
        sys::set_rlimit(limit.resource, limit.soft, limit.hard).map_err(fail(step, b""))?;
    }
    let workdir: &[u8] = if spec.workdir.is_empty() {
        b"/"
    } else {
        &spec.workdir
    };
    std::env::set_current_dir(OsStr::from_bytes(workdir))
        .map_err(|e| fail(Step::Workdir, workdir)(io_errno(&e)))?;
    exec(&spec, on_ready)
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

/// The program to execute: `exec` as given when it names a path; otherwise
/// looked up in the environment's `PATH`, or in [`DEFAULT_PATH`] when the
/// environment has none.
fn resolve(exec: &[u8], env: &[Vec<u8>]) -> Vec<u8> {
    if exec.contains(&b'/') {
        return exec.to_vec();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|&b| b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| [dir, b"/", exec].concat())
        .find(|candidate| Path::new(OsStr::from_bytes(candidate)).is_file())
        .unwrap_or_else(|| exec.to_vec())
}

fn exec(spec: &Spec, on_ready: impl FnOnce()) -> Result<Infallible, Failure> {
    let exec: &[u8] = if spec.exec.is_empty() {
        b"/bin/sh"
    } else {
        &spec.exec
    };
    let program = resolve(exec, &spec.env);
    let mut command = Command::new(OsStr::from_bytes(&program));
    command
        .arg0(OsStr::from_bytes(exec))
        .args(spec.args.iter().map(|a| OsStr::from_bytes(a)))
        .env_clear();
    for entry in &spec.env {
        let mut parts = entry.splitn(2, |&b| b == b'=');
        if let (Some(name), Some(value)) = (parts.next(), parts.next())
            && !name.is_empty()
        {
            command.env(OsStr::from_bytes(name), OsStr::from_bytes(value));
        }
    }
    on_ready();
    let error = command.exec();
    Err(fail(Step::Exec, exec)(io_errno(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_used_as_given_and_a_name_is_looked_up() {
        assert_eq!(resolve(b"/no/such/prog", &[]), b"/no/such/prog");
        assert_eq!(resolve(b"./prog", &[]), b"./prog");
        // `sh` exists in the default PATH of any Linux host running tests.
        let sh = resolve(b"sh", &[]);
        assert!(sh.ends_with(b"/sh") && sh.starts_with(b"/"), "{sh:?}");
        // The environment's PATH wins; a name found nowhere stays a name.
        let dir = std::env::temp_dir();
        let env = vec![[b"PATH=".as_slice(), dir.as_os_str().as_bytes()].concat()];
        assert_eq!(
            resolve(b"no-such-program-here", &env),
            b"no-such-program-here"
        );
    }

    #[test]
    fn failures_name_the_step_and_the_errno() {
        let failure = fail(Step::Mount { index: 2 }, b"/data\n")(19);
        assert_eq!(
            failure.to_string(),
            "mounting mapped directory 2 at /data\\x0a: No such device (os error 19)"
        );
    }
}
