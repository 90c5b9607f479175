//! What can be wrong with this host or its guest kernel.

use std::{fmt, io, path::PathBuf};

use crate::util::errno_description;

/// One reason this host cannot boot a microVM, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostProblem {
    /// `/dev/kvm` does not exist: no KVM on this host.
    KvmMissing,
    /// `/dev/kvm` exists but cannot be opened read-write.
    KvmNotAccessible {
        /// The errno from `open`.
        errno: i32,
    },
    /// KVM is the nested paravirtualized kind (`kvm_pvm`), where stock guest
    /// kernels fail with `KVM_EXIT_INTERNAL_ERROR`, and monocore's compat
    /// kernel is not installed (or not usable).
    NestedPvm {
        /// Why the compat kernel cannot be used.
        compat: CompatKernelError,
    },
    /// `libkrunfw.so.5` (the guest kernel) cannot be loaded.
    LibkrunfwNotLoadable {
        /// What the dynamic loader said.
        error: String,
    },
}

impl HostProblem {
    /// `true` for a problem with the guest kernel monocore would pick (not
    /// with KVM itself): an explicit kernel (`--kernel`) makes it moot.
    pub fn is_about_the_kernel(&self) -> bool {
        matches!(
            self,
            Self::NestedPvm { .. } | Self::LibkrunfwNotLoadable { .. }
        )
    }

    /// A one-line fix.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::KvmMissing => {
                "enable virtualization (VT-x/AMD-V) in the firmware and load the kvm_intel or kvm_amd module; in a cloud VM, pick an instance type with nested virtualization"
            }
            Self::KvmNotAccessible { .. } => {
                "add your user to the `kvm` group (sudo usermod -aG kvm $USER, then log in again) or run as root"
            }
            Self::NestedPvm { .. } => {
                "build the compat kernel with ./scripts/build-compat-kernel.sh (or ./scripts/setup.sh; 4-13 minutes, once), or run on a host with hardware KVM"
            }
            Self::LibkrunfwNotLoadable { .. } => {
                "install libkrunfw5 (./scripts/setup.sh adds Debian forky with a low pin priority and installs it)"
            }
        }
    }
}

impl fmt::Display for HostProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KvmMissing => f.write_str("/dev/kvm does not exist"),
            Self::KvmNotAccessible { errno } => write!(
                f,
                "/dev/kvm cannot be opened read-write: {}",
                errno_description(*errno)
            ),
            Self::NestedPvm { compat } => write!(
                f,
                "KVM is nested paravirtualized (kvm_pvm): stock guest kernels fail with KVM_EXIT_INTERNAL_ERROR, and {compat}"
            ),
            Self::LibkrunfwNotLoadable { error } => {
                write!(f, "libkrunfw.so.5 cannot be loaded: {error}")
            }
        }
    }
}

/// Why the compat kernel cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompatKernelError {
    /// Nothing is installed in the directory.
    #[error("no compat kernel in {}", dir.display())]
    Missing {
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// Its stamp is there but cannot be read.
    #[error("the compat kernel in {} is unusable: cannot read its stamp ({kind})", dir.display())]
    StampUnreadable {
        /// The directory.
        dir: PathBuf,
        /// What reading it failed with.
        kind: io::ErrorKind,
    },
    /// Its stamp has another format than this monocore reads.
    #[error(
        "the compat kernel in {} is unusable: its stamp has format {found:?}, this monocore reads \
         {wanted:?}; rebuild it with ./scripts/build-compat-kernel.sh --force",
        dir.display()
    )]
    StampFormat {
        /// The directory.
        dir: PathBuf,
        /// The stamp's `format=` value, if it has one.
        found: Option<String>,
        /// The format this monocore reads.
        wanted: &'static str,
    },
    /// Its stamp names no release.
    #[error("the compat kernel in {} is unusable: its stamp names no release", dir.display())]
    NoRelease {
        /// The directory.
        dir: PathBuf,
    },
    /// The stamp is there, but `vmlinux` is not.
    #[error(
        "the compat kernel in {} is unusable: vmlinux is missing; rebuild it with \
         ./scripts/build-compat-kernel.sh",
        dir.display()
    )]
    NoVmlinux {
        /// The directory.
        dir: PathBuf,
    },
}

/// Why no guest kernel can be used (see [`crate::kernel::KernelChoice::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// A `kvm_pvm` host, where only the compat kernel boots, without a
    /// usable one.
    #[error(
        "this host's KVM is kvm_pvm, where only the compat kernel boots; build it with \
         ./scripts/build-compat-kernel.sh (4-13 minutes)"
    )]
    NoCompatKernel(#[source] CompatKernelError),
    /// The kernel given (`KernelChoice::Elf`, `--kernel`) is not a file.
    #[error("kernel {} is not a file", .0.display())]
    NotAFile(PathBuf),
}
