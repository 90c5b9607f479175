//! Every program that links monocore is its own VM helper.
//!
//! [`MicroVm::spawn`](crate::vm::MicroVm::spawn) runs the VM in a child process.
//! That child is this very program, executed again with a marker argument
//! (`monocore-vmm --monocore-vmm-helper`), and the marker is recognised by
//! an ELF constructor: a function in `.init_array` that the C library runs
//! before `main`. In a helper it runs [`helper_main`](super::helper::helper_main)'s
//! code and exits, so the program's `main` (its threads, signal handlers,
//! `log` logger, test harness, …) never runs a second time, and nothing has
//! to be called in `main`.
//!
//! # Why this mechanism
//!
//! - **Nothing to build, ship or configure.** Cargo never builds a
//!   dependency's binaries, so a separate helper would be a second binary
//!   every user must build, install and find (and a "helper not found"
//!   failure for everyone who does not). Embedding a helper binary would mean building
//!   a second copy of the VMM (libkrun) for every dependent and writing it
//!   to disk at run time. The program itself already contains the VMM.
//! - **Before `main`, not in `main`.** A `helper_main()` call at the top of
//!   `main` would be one more line to forget, and in a test harness
//!   (`cargo test`) there is no `main` of the user's to put it in. The
//!   constructor also runs before any other constructor without a priority
//!   (`.init_array.00101` sorts before plain `.init_array`), so the helper
//!   starts from a clean process: no thread, handler or logger of the
//!   program exists in it.
//! - **The running image, not a path.** The constructor opens
//!   `/proc/self/exe` (`O_PATH`) when the program starts, and `spawn`
//!   executes that descriptor (`/proc/self/fd/N`). So a binary replaced or
//!   deleted on disk while it runs (an upgrade, `cargo build` rewriting
//!   `target/`) still starts the same code; no `PATH`, current directory or
//!   environment variable is consulted. The descriptor's device and inode
//!   are checked before use; if the program closed it, `/proc/self/exe`
//!   (which names the running image too) is opened instead.
//!
//! # When it refuses
//!
//! `spawn` checks, before starting anything, that re-executing the program
//! will reach this constructor; otherwise it returns
//! [`MonocoreError::SelfHelper`] (never a second run of the program, never
//! a hang):
//!
//! - monocore is in a shared library (e.g. a Python extension), so
//!   `/proc/self/exe` is some other program ([`SelfHelperError::SharedLibrary`]);
//! - the C library is not glibc, which is the one that passes `argc`/`argv`
//!   to constructors ([`SelfHelperError::Unsupported`]);
//! - the constructor did not run ([`SelfHelperError::NotStarted`]).
//!
//! Then give [`SpawnOptions::helper_path`](super::spawn::SpawnOptions::helper_path)
//! a separate helper binary whose `main` calls `helper_main`.
//!
//! # Linking
//!
//! The linker copies an object file out of a library only when something
//! it needs is defined there, so a `#[used]` static alone could be dropped
//! with its object. [`executable`], which `spawn` calls, reads the
//! constructor's static, so any program that can spawn a VM links the
//! constructor.

use std::{
    ffi::CStr,
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::PathBuf,
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use rustix::fs::{Mode, OFlags};

pub use crate::error::SelfHelperError;

/// The argument that makes the program a VM helper.
pub(crate) const MARKER: &str = "--monocore-vmm-helper";
/// `argv[0]` of a helper (what `ps` shows).
pub(crate) const HELPER_ARG0: &str = "monocore-vmm";

/// The running program's executable, opened at start-up.
#[derive(Debug)]
struct ExeFile {
    fd: OwnedFd,
    dev: u64,
    ino: u64,
}

impl ExeFile {
    fn open() -> io::Result<Self> {
        let fd = rustix::fs::open(
            "/proc/self/exe",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        Ok(Self {
            fd,
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }

    fn is_same_file(&self, other: &ExeFile) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// Set by the constructor when the program starts.
static STARTED: AtomicBool = AtomicBool::new(false);
/// The executable, opened by the constructor.
static EXE: OnceLock<ExeFile> = OnceLock::new();

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod constructor {
    use std::ffi::{CStr, c_char, c_int};

    use super::{EXE, ExeFile, MARKER, STARTED};

    /// The constructor's entry in `.init_array`. glibc calls every entry
    /// with `(argc, argv, envp)`. Priority 101, the first one available to
    /// programs (0 to 100 are reserved to the C and Rust runtimes; std reads
    /// its arguments at 99).
    #[used]
    #[unsafe(link_section = ".init_array.00101")]
    pub(super) static CONSTRUCTOR: extern "C" fn(
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) = start;

    extern "C" fn start(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
        STARTED.store(true, std::sync::atomic::Ordering::Release);
        // SAFETY: glibc passes this program's own `argc` and `argv`: `argv`
        // holds `argc` valid NUL-terminated strings followed by NULL.
        if unsafe { is_helper(argc, argv) } {
            if !stdin_is_a_pipe() {
                // Typed by hand: the request never comes; do not wait for it.
                eprintln!(
                    "{MARKER} is the argument of monocore's VM helper, which `MicroVm::spawn` \
                     starts with its request on a pipe; it is not for use by hand"
                );
                std::process::exit(2);
            }
            // SAFETY: a process-wide setting made before any other code of
            // the program runs; SIG_IGN for SIGPIPE is what Rust's runtime
            // sets before `main` (so a write to a closed pipe is an error,
            // not death), as it did for a separate helper binary.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            std::process::exit(i32::from(crate::runtime::helper::run_helper()));
        }
        // Failure is not reported here: `spawn` opens it again, and reports.
        if let Ok(exe) = ExeFile::open() {
            let _ = EXE.set(exe);
        }
    }

    /// `spawn` always gives the helper a pipe as stdin.
    fn stdin_is_a_pipe() -> bool {
        rustix::fs::fstat(rustix::stdio::stdin()).is_ok_and(|stat| {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Fifo
        })
    }

    /// Whether the arguments are exactly `<argv0> --monocore-vmm-helper`.
    ///
    /// # Safety
    /// `argv` must be NULL or hold `argc` valid NUL-terminated strings.
    unsafe fn is_helper(argc: c_int, argv: *const *const c_char) -> bool {
        if argc != 2 || argv.is_null() {
            return false;
        }
        // SAFETY: `argv` holds 2 elements (argc == 2), per the contract.
        let arg = unsafe { *argv.add(1) };
        // SAFETY: a non-NULL element of `argv` is a valid C string.
        !arg.is_null() && unsafe { CStr::from_ptr(arg) }.to_bytes() == MARKER.as_bytes()
    }

    /// The constructor's address, which the linker must keep.
    pub(super) fn address() -> usize {
        let constructor = std::hint::black_box(&CONSTRUCTOR);
        *constructor as usize
    }
}

/// The program's executable, ready to be run as a VM helper: a descriptor
/// of the running image that this `Executable` owns, so it stays open until
/// the child has executed it.
#[derive(Debug)]
pub(crate) struct Executable {
    fd: OwnedFd,
}

impl Executable {
    /// The command that runs this program as a VM helper.
    pub(crate) fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        // The child inherits every descriptor until it executes, so this
        // path names the same file in the child. The descriptor is
        // close-on-exec: the helper does not keep it.
        let mut command = Command::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        command.arg0(HELPER_ARG0).arg(MARKER);
        command
    }
}

/// Checks that this program can be its own VM helper (see the module docs)
/// and returns its executable.
pub(crate) fn executable() -> Result<Executable, SelfHelperError> {
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    return Err(SelfHelperError::Unsupported {
        os: std::env::consts::OS,
    });
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let constructor = constructor::address();
        if !STARTED.load(Ordering::Acquire) {
            return Err(SelfHelperError::NotStarted);
        }
        if let Some(object) = shared_object_of(constructor) {
            return Err(SelfHelperError::SharedLibrary { object });
        }
        let fd = match EXE.get().and_then(|exe| reopen(exe).ok()) {
            Some(fd) => fd,
            None => {
                ExeFile::open()
                    .map_err(|source| SelfHelperError::Executable { source })?
                    .fd
            }
        };
        Ok(Executable { fd })
    }
}

/// A private duplicate of the start-up descriptor, if it still is the file
/// it was (a program may have closed it, and the number may be reused).
fn reopen(exe: &ExeFile) -> io::Result<OwnedFd> {
    let fd = rustix::io::fcntl_dupfd_cloexec(exe.fd.as_fd(), 3)?;
    let stat = rustix::fs::fstat(&fd)?;
    let now = ExeFile {
        fd,
        dev: stat.st_dev,
        ino: stat.st_ino,
    };
    if now.is_same_file(exe) {
        Ok(now.fd)
    } else {
        Err(io::Error::other("the start-up descriptor was replaced"))
    }
}

/// The shared library that holds `address`, or `None` when it is in the
/// program's executable (or the loader cannot tell, as in a static
/// executable, which has no shared libraries).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn shared_object_of(address: usize) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let object_of = |address: usize| -> Option<(usize, PathBuf)> {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: `dladdr` only reads the loader's tables and writes `info`,
        // a valid `Dl_info`; any address may be asked about.
        let found = unsafe { libc::dladdr(address as *const libc::c_void, info.as_mut_ptr()) };
        if found == 0 {
            return None;
        }
        // SAFETY: `dladdr` returned non-zero, so it filled `info`.
        let info = unsafe { info.assume_init() };
        let name = if info.dli_fname.is_null() {
            PathBuf::new()
        } else {
            // SAFETY: `dli_fname` is the loader's NUL-terminated name of a
            // loaded object, valid while it stays loaded (monocore's object
            // is unloaded only with this code).
            let name = unsafe { CStr::from_ptr(info.dli_fname) };
            PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()))
        };
        Some((info.dli_fbase as usize, name))
    };
    // SAFETY: `getauxval` has no preconditions; AT_ENTRY is the entry point
    // of the program's executable, set by the kernel or the loader.
    let entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
    let (ours, main) = (object_of(address)?, object_of(entry)?);
    (ours.0 != main.0).then_some(ours.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constructor_ran_and_opened_the_running_executable() {
        assert!(STARTED.load(Ordering::Acquire));
        let exe = EXE.get().unwrap();
        let now = ExeFile::open().unwrap();
        assert!(exe.is_same_file(&now));
        let on_disk = std::fs::metadata(std::env::current_exe().unwrap()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((exe.dev, exe.ino), (on_disk.dev(), on_disk.ino()));
    }

    #[test]
    fn this_test_binary_can_be_its_own_helper() {
        let exe = executable().unwrap();
        let command = exe.command();
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, [MARKER]);
        assert!(
            command
                .get_program()
                .to_str()
                .unwrap()
                .starts_with("/proc/self/fd/")
        );
        // monocore is in the executable here, not in a shared library.
        assert_eq!(shared_object_of(constructor::address()), None);
    }

    #[test]
    fn the_marker_by_hand_is_refused_at_once_and_runs_nothing() {
        // This test binary, with the marker but a terminal-like stdin (not
        // a pipe): it must neither wait for a request nor run the tests.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(MARKER)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("it is not for use by hand"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn code_in_a_shared_library_is_named() {
        // libc's `getpid` lives in libc.so, not in this executable.
        let object = shared_object_of(libc::getpid as *const () as usize).unwrap();
        assert!(
            object.to_string_lossy().contains("libc.so"),
            "{}",
            object.display()
        );
    }
}
