//! Can this host boot microVMs, and with which kernel? [`check`] answers
//! with a [`HostReport`].
//!
//! On hardware KVM the guest kernel is libkrunfw's. On a `kvm_pvm` host
//! (paravirtualized KVM, which emulates guest kernel code) only monocore's
//! compat kernel boots, slowly; see [`kernel`].
//!
//! - this file: [`check`] and its [`HostReport`], and [`check_kvm_limits`];
//! - [`kernel`]: which guest kernel a VM boots ([`kernel::KernelChoice`]);
//! - `fit.rs`: whether a valid config fits this host (its memory, its KVM's
//!   vCPUs, its kernel's networking), checked before any VM starts.
//!
//! ```
//! let report = monocore::host::check();
//! println!("{report}");
//! match report.boot_blocker() {
//!     None => assert!(report.can_boot() && report.kernel.is_some()),
//!     Some(problem) => assert!(!problem.fix().is_empty()),
//! }
//! ```

pub(crate) mod fit;
pub mod kernel;

use std::{ffi::CStr, fmt, path::Path};

pub use crate::error::HostProblem;
use kernel::CompatKernel;

/// The guest kernel library libkrun loads at run time.
pub const LIBKRUNFW: &str = "libkrunfw.so.5";
const LIBKRUNFW_C: &CStr = c"libkrunfw.so.5";

/// The kernel a VM boots on this host (what [`KernelChoice::Auto`] picks).
///
/// [`KernelChoice::Auto`]: crate::kernel::KernelChoice::Auto
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootKernel {
    /// libkrunfw's kernel, on hardware KVM.
    Libkrunfw,
    /// monocore's compat kernel, on a `kvm_pvm` host: it boots, slowly.
    Compat(CompatKernel),
}

impl fmt::Display for BootKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Libkrunfw => write!(f, "libkrunfw's kernel ({LIBKRUNFW})"),
            Self::Compat(compat) => write!(
                f,
                "compat kernel {} ({}), slow: ~{} s per boot at 128 MiB",
                compat.release,
                compat.vmlinux.display(),
                kernel::COMPAT_BOOT_SECONDS
            ),
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// Every problem, most fundamental first. Empty means the host can boot.
    pub problems: Vec<HostProblem>,
    /// The kernel VMs boot, when one can boot here.
    pub kernel: Option<BootKernel>,
    /// Online CPUs.
    pub cpus: usize,
    /// `MemTotal` from `/proc/meminfo`, in KiB, if readable.
    pub mem_total_kib: Option<u64>,
    /// `MemAvailable` from `/proc/meminfo`, in KiB, if readable.
    pub mem_available_kib: Option<u64>,
}

impl HostReport {
    /// `true` when nothing blocks booting a microVM.
    pub fn can_boot(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first problem that blocks booting, if any.
    pub fn boot_blocker(&self) -> Option<&HostProblem> {
        self.problems.first()
    }

    /// The memory figures as text: `"<total> MiB total, <available> MiB
    /// available"` (`unknown` where `/proc/meminfo` did not say).
    pub fn memory_summary(&self) -> String {
        let mib =
            |kib: Option<u64>| kib.map_or("unknown".to_owned(), |k| format!("{} MiB", k / 1024));
        format!(
            "{} total, {} available",
            mib(self.mem_total_kib),
            mib(self.mem_available_kib)
        )
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cpus: {}, memory: {}", self.cpus, self.memory_summary())?;
        if self.problems.is_empty() {
            return match &self.kernel {
                Some(kernel) => write!(f, "ok: this host can boot microVMs with {kernel}"),
                None => f.write_str("ok: this host can boot microVMs"),
            };
        }
        let mut first = true;
        for problem in &self.problems {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "problem: {problem}\n  fix: {}", problem.fix())?;
        }
        Ok(())
    }
}

/// Checks this host: `/dev/kvm`, its kind, the guest kernel (libkrunfw, or
/// on `kvm_pvm` the compat kernel), CPUs and memory. Does no harm (opens and
/// closes `/dev/kvm`, loads and unloads libkrunfw, reads the compat kernel's
/// stamp).
pub fn check() -> HostReport {
    let mut problems = Vec::new();
    if let Some(problem) = check_kvm(Path::new("/dev/kvm")) {
        problems.push(problem);
    }
    let kernel = if kernel::host_is_pvm() {
        match kernel::find_compat_kernel() {
            Ok(compat) => Some(BootKernel::Compat(compat)),
            Err(compat) => {
                problems.push(HostProblem::NestedPvm { compat });
                None
            }
        }
    } else {
        match load_libkrunfw() {
            Ok(()) => Some(BootKernel::Libkrunfw),
            Err(error) => {
                problems.push(HostProblem::LibkrunfwNotLoadable { error });
                None
            }
        }
    };
    let kernel = kernel.filter(|_| problems.is_empty());
    let (mem_total_kib, mem_available_kib) = std::fs::read_to_string("/proc/meminfo")
        .map(|text| (meminfo(&text, "MemTotal"), meminfo(&text, "MemAvailable")))
        .unwrap_or((None, None));
    HostReport {
        problems,
        kernel,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total_kib,
        mem_available_kib,
    }
}

/// What this host can give one VM: whether `/dev/kvm` opens, and if so the
/// most vCPUs its KVM runs in one VM (`KVM_CAP_MAX_VCPUS`, `None` if it
/// does not say); its memory in MiB (`MemTotal`, `None` if unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// `/dev/kvm`: its vCPU limit, or why it cannot be used.
    pub kvm: Result<Option<u32>, HostProblem>,
    /// The host's memory in MiB.
    pub mem_total_mib: Option<u64>,
}

/// Reads [`HostLimits`]: opens `/dev/kvm` (and asks it
/// `KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS)`), reads `/proc/meminfo`.
pub fn check_kvm_limits() -> HostLimits {
    let kvm = match open_kvm(Path::new("/dev/kvm")) {
        Ok(file) => Ok(max_vcpus(&file)),
        Err(problem) => Err(problem),
    };
    let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo(&text, "MemTotal"))
        .map(|kib| kib / 1024);
    HostLimits { kvm, mem_total_mib }
}

/// `KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS)` on an open `/dev/kvm`.
fn max_vcpus(kvm: &std::fs::File) -> Option<u32> {
    use std::os::fd::AsRawFd;
    const KVM_CHECK_EXTENSION: libc::c_ulong = 0xAE03; // _IO(KVMIO, 0x03)
    const KVM_CAP_MAX_VCPUS: libc::c_int = 66;
    // SAFETY: `kvm` is an open `/dev/kvm` that outlives the call;
    // KVM_CHECK_EXTENSION takes an integer argument and reads or writes no
    // memory of ours.
    let ret = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS) };
    u32::try_from(ret).ok().filter(|n| *n > 0)
}

fn check_kvm(path: &Path) -> Option<HostProblem> {
    open_kvm(path).err()
}

fn open_kvm(path: &Path) -> Result<std::fs::File, HostProblem> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HostProblem::KvmMissing,
            _ => HostProblem::KvmNotAccessible {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            },
        })
}

fn load_libkrunfw() -> Result<(), String> {
    // SAFETY: `LIBKRUNFW_C` is a valid C string. Loading runs the library's
    // initialisers; libkrunfw is the trusted system library libkrun itself
    // loads. The handle is closed at once.
    let handle = unsafe { libc::dlopen(LIBKRUNFW_C.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: `dlerror` returns NULL or a valid C string owned by libc,
        // copied here before any other dl* call.
        let message = unsafe {
            let err = libc::dlerror();
            if err.is_null() {
                "unknown dlopen error".to_owned()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            }
        };
        return Err(message);
    }
    // SAFETY: `handle` came from a successful `dlopen` and is closed once.
    unsafe { libc::dlclose(handle) };
    Ok(())
}

fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       16314468 kB\nMemFree:  100 kB\nMemAvailable:   12000000 kB\n";
        assert_eq!(meminfo(text, "MemTotal"), Some(16_314_468));
        assert_eq!(meminfo(text, "MemAvailable"), Some(12_000_000));
        assert_eq!(meminfo(text, "Mem"), None);
    }

    #[test]
    fn limits_match_this_host() {
        let limits = check_kvm_limits();
        assert!(limits.mem_total_mib.unwrap() > 0);
        match (Path::new("/dev/kvm").exists(), &limits.kvm) {
            (true, Ok(max)) => assert!(max.is_none_or(|m| m >= 1), "{max:?}"),
            (true, Err(problem)) => {
                assert!(matches!(problem, HostProblem::KvmNotAccessible { .. }))
            }
            (false, kvm) => assert_eq!(kvm, &Err(HostProblem::KvmMissing)),
        }
    }

    #[test]
    fn kvm_problems_are_typed() {
        assert_eq!(
            check_kvm(Path::new("/no/such/kvm")),
            Some(HostProblem::KvmMissing)
        );
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be opened for writing: EISDIR.
        assert_eq!(
            check_kvm(dir.path()),
            Some(HostProblem::KvmNotAccessible {
                errno: libc::EISDIR
            })
        );
    }

    #[test]
    fn report_matches_this_host() {
        let report = check();
        assert!(report.cpus >= 1);
        assert!(report.mem_total_kib.unwrap() > 0);
        let pvm = Path::new("/sys/module/kvm_pvm").exists();
        let compat = kernel::find_compat_kernel();
        assert_eq!(
            report
                .problems
                .iter()
                .any(|p| matches!(p, HostProblem::NestedPvm { .. })),
            pvm && compat.is_err()
        );
        if report.can_boot() && pvm {
            assert_eq!(report.kernel, Some(BootKernel::Compat(compat.unwrap())));
            assert!(report.to_string().contains("compat kernel"), "{report}");
        }
        assert_eq!(report.can_boot(), report.boot_blocker().is_none());
        assert_eq!(report.can_boot(), report.kernel.is_some());
        let text = report.to_string();
        for problem in &report.problems {
            assert!(text.contains(problem.fix()), "{text}");
        }
    }

    #[test]
    fn display_is_one_line_per_problem_and_fix() {
        let report = HostReport {
            problems: vec![
                HostProblem::NestedPvm {
                    compat: kernel::CompatKernelError::Missing {
                        dir: "/c/kernel/compat".into(),
                    },
                },
                HostProblem::LibkrunfwNotLoadable {
                    error: "not found".into(),
                },
            ],
            kernel: None,
            cpus: 2,
            mem_total_kib: Some(4 * 1024 * 1024),
            mem_available_kib: None,
        };
        assert!(!report.can_boot());
        assert!(matches!(
            report.boot_blocker(),
            Some(HostProblem::NestedPvm { .. })
        ));
        let text = report.to_string();
        assert!(text.starts_with("cpus: 2, memory: 4096 MiB total, unknown available\nproblem: KVM is nested paravirtualized"));
        assert!(
            text.contains(
                "and no compat kernel in /c/kernel/compat\n  fix: build the compat kernel"
            ),
            "{text}"
        );
        assert!(text.contains(
            "problem: libkrunfw.so.5 cannot be loaded: not found\n  fix: install libkrunfw5"
        ));
    }
}
