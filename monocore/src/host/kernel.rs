//! Which guest kernel a VM boots.
//!
//! - **libkrunfw** (`libkrunfw.so.5`), the kernel libkrun loads by itself: the
//!   choice on hosts with hardware KVM.
//! - **The compat kernel**: a Linux 6.12 that `scripts/build-compat-kernel.sh`
//!   builds for hosts whose KVM is `kvm_pvm` (a paravirtualized KVM that runs
//!   guest kernel code through an instruction emulator). libkrunfw's kernel
//!   dies there with `KVM_EXIT_INTERNAL_ERROR`; the compat kernel boots,
//!   slowly. It is installed in [`compat_kernel_dir`] with a stamp that names
//!   what it was built from.
//! - **An ELF kernel of your own** ([`KernelChoice::Elf`], `--kernel`), booted
//!   with monocore's command line for ELF kernels.
//!
//! [`KernelChoice::Auto`] (the default) takes libkrunfw, except on `kvm_pvm`
//! hosts, where it takes the compat kernel, or fails with the command that
//! builds it.
//!
//! Boot parameters go to the kernel through `krun_set_kernel`'s command
//! line, never through environment entries.
//!
//! ```
//! use monocore::kernel::KernelChoice;
//!
//! match KernelChoice::Auto.resolve() {
//!     Ok(kernel) => println!("VMs boot {kernel}"), // libkrunfw's kernel, or an ELF kernel
//!     Err(e) => println!("no kernel can boot here: {e}"),
//! }
//! ```

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::error::MonocoreResult;
pub use crate::error::{CompatKernelError, KernelError};

/// The stamp format this library reads (`format=` in the stamp).
pub const COMPAT_STAMP_FORMAT: &str = "1";

/// What libkrun's default command line holds (libkrun 1.19.7's
/// `DEFAULT_KERNEL_CMDLINE` and `init=`), plus what a kernel without a block
/// layer and with a late console needs: `root=/dev/root` names the root
/// virtio-fs share for `rootfstype=virtiofs`, and `console=ttynull` (the last
/// `console=`, so `/dev/console`) gives init a console before the virtio
/// console port exists. libkrun appends the virtio-mmio devices and
/// `KRUN_INIT`.
pub const ELF_CMDLINE: &str = "reboot=k panic=-1 panic_print=0 nomodule console=hvc0 \
     console=ttynull root=/dev/root rootfstype=virtiofs rw quiet no-kvmapf init=/init.krun";

/// Added on `kvm_pvm` hosts. `clearcpuid`: the emulator has no `cmpxchg16b`,
/// `popcnt`, `clac`/`stac` (SMAP) or `xsave`; without `erms`/`fsrm` the
/// kernel copies with `rep movsq` (8 bytes per emulated step, not 1).
/// `rodata=off`: no read-only remapping of the kernel at boot (1 s there).
pub const PVM_CMDLINE: &str = "clearcpuid=cx16,popcnt,smap,xsave,erms,fsrm rodata=off";

/// The boot time of the compat kernel measured on the development host
/// (`kvm_pvm`, 2 vCPUs): `spawn` to guest exit for `/bin/true` with
/// 128 MiB, from the `boot_to_exit` benchmark (19.6 s). More guest memory
/// costs about 1.5 s per 128 MiB. Shown by `host::check`.
pub const COMPAT_BOOT_SECONDS: u32 = 20;

/// Which kernel to boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelChoice {
    /// libkrunfw's, or the compat kernel on `kvm_pvm` hosts.
    #[default]
    Auto,
    /// libkrunfw's kernel, even where it cannot boot.
    Libkrunfw,
    /// This ELF kernel (`vmlinux`), with [`ELF_CMDLINE`] (plus
    /// [`PVM_CMDLINE`] on `kvm_pvm` hosts).
    Elf(PathBuf),
}

/// A resolved kernel: what the VMM is told to boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GuestKernel {
    /// libkrunfw's bundled kernel.
    Libkrunfw,
    /// An ELF kernel booted with `krun_set_kernel`.
    Elf {
        /// The `vmlinux`.
        path: PathBuf,
        /// Its command line.
        cmdline: String,
    },
}

impl fmt::Display for GuestKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Libkrunfw => f.write_str("libkrunfw's kernel"),
            Self::Elf { path, .. } => write!(f, "ELF kernel {}", path.display()),
        }
    }
}

/// An installed compat kernel, as its stamp describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatKernel {
    /// The `vmlinux`.
    pub vmlinux: PathBuf,
    /// Its `System.map` (to name the function at a guest `rip`).
    pub system_map: PathBuf,
    /// The kernel release (`6.12.117-monocore-compat`).
    pub release: String,
}

/// Where `scripts/build-compat-kernel.sh` installs the compat kernel:
/// `kernel/compat` in the [cache directory](crate::state::cache_dir).
pub fn compat_kernel_dir() -> PathBuf {
    crate::state::compat_kernel_dir()
}

/// The compat kernel installed in [`compat_kernel_dir`].
pub fn find_compat_kernel() -> Result<CompatKernel, CompatKernelError> {
    compat_kernel_in(&compat_kernel_dir())
}

/// The compat kernel installed in `dir`: its stamp must have this library's
/// format and name a release, and `vmlinux` must be a file. (The build
/// script verifies the vmlinux's sha256 against the stamp.)
pub fn compat_kernel_in(dir: &Path) -> Result<CompatKernel, CompatKernelError> {
    let dir_buf = || dir.to_path_buf();
    let stamp = match std::fs::read_to_string(dir.join("stamp")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CompatKernelError::Missing { dir: dir_buf() });
        }
        Err(e) => {
            return Err(CompatKernelError::StampUnreadable {
                dir: dir_buf(),
                kind: e.kind(),
            });
        }
    };
    let value = |key: &str| {
        stamp
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    match value("format") {
        Some(COMPAT_STAMP_FORMAT) => {}
        other => {
            return Err(CompatKernelError::StampFormat {
                dir: dir_buf(),
                found: other.map(str::to_owned),
                wanted: COMPAT_STAMP_FORMAT,
            });
        }
    }
    let release = value("release")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| CompatKernelError::NoRelease { dir: dir_buf() })?
        .to_owned();
    let vmlinux = dir.join("vmlinux");
    if !vmlinux.is_file() {
        return Err(CompatKernelError::NoVmlinux { dir: dir_buf() });
    }
    Ok(CompatKernel {
        vmlinux,
        system_map: dir.join("System.map"),
        release,
    })
}

/// `true` when `/dev/kvm` is `kvm_pvm`'s.
pub fn host_is_pvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

/// The command line for an ELF kernel on this host.
pub fn elf_cmdline(pvm: bool) -> String {
    if pvm {
        format!("{ELF_CMDLINE} {PVM_CMDLINE}")
    } else {
        ELF_CMDLINE.to_owned()
    }
}

impl KernelChoice {
    /// The kernel to boot on this host.
    ///
    /// `Auto` on a `kvm_pvm` host without a compat kernel, or an `Elf` path
    /// that is not a file, is [`MonocoreError::Kernel`](crate::MonocoreError::Kernel).
    pub fn resolve(&self) -> MonocoreResult<GuestKernel> {
        let pvm = host_is_pvm();
        match self {
            Self::Libkrunfw => Ok(GuestKernel::Libkrunfw),
            Self::Auto if !pvm => Ok(GuestKernel::Libkrunfw),
            Self::Auto => {
                let kernel = find_compat_kernel().map_err(KernelError::NoCompatKernel)?;
                Ok(GuestKernel::Elf {
                    path: kernel.vmlinux,
                    cmdline: elf_cmdline(true),
                })
            }
            Self::Elf(path) => {
                if !path.is_file() {
                    return Err(KernelError::NotAFile(path.clone()).into());
                }
                Ok(GuestKernel::Elf {
                    path: path.clone(),
                    cmdline: elf_cmdline(pvm),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn stamp(dir: &Path, text: &str) {
        fs::write(dir.join("stamp"), text).unwrap();
    }

    #[test]
    fn an_installed_kernel_is_found_by_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        assert_eq!(
            compat_kernel_in(dir),
            Err(CompatKernelError::Missing {
                dir: dir.to_path_buf()
            })
        );
        stamp(
            dir,
            "# comment\nformat=1\nrelease=6.12.117-monocore-compat\n",
        );
        let err = compat_kernel_in(dir).unwrap_err();
        assert!(err.to_string().contains("vmlinux is missing"), "{err}");
        fs::write(dir.join("vmlinux"), b"\x7fELF").unwrap();
        let kernel = compat_kernel_in(dir).unwrap();
        assert_eq!(kernel.release, "6.12.117-monocore-compat");
        assert_eq!(kernel.vmlinux, dir.join("vmlinux"));
    }

    #[test]
    fn a_stamp_of_another_format_or_without_release_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        fs::write(dir.join("vmlinux"), b"\x7fELF").unwrap();
        stamp(dir, "format=2\nrelease=x\n");
        let err = compat_kernel_in(dir).unwrap_err().to_string();
        assert!(
            err.contains("format Some(\"2\")") && err.contains("--force"),
            "{err}"
        );
        stamp(dir, "format=1\n");
        assert!(
            compat_kernel_in(dir)
                .unwrap_err()
                .to_string()
                .contains("no release")
        );
    }

    #[test]
    fn the_command_line_adds_the_pvm_workarounds_only_on_pvm() {
        assert_eq!(elf_cmdline(false), ELF_CMDLINE);
        assert!(elf_cmdline(true).ends_with(PVM_CMDLINE));
        // Boot parameters, never env entries.
        assert!(!ELF_CMDLINE.contains('"') && !PVM_CMDLINE.contains('"'));
    }

    #[test]
    fn an_elf_choice_must_be_a_file() {
        let err = KernelChoice::Elf("/no/such/vmlinux".into())
            .resolve()
            .unwrap_err();
        assert!(
            matches!(&err, crate::MonocoreError::Kernel(KernelError::NotAFile(p)) if p.as_os_str() == "/no/such/vmlinux"),
            "{err:?}"
        );
        // The cause is told once, as the source.
        assert_eq!(err.to_string(), "no usable guest kernel");
        assert_eq!(
            crate::ErrorChain(&err).to_string(),
            "no usable guest kernel: kernel /no/such/vmlinux is not a file"
        );
        assert_eq!(
            KernelChoice::Libkrunfw.resolve().unwrap(),
            GuestKernel::Libkrunfw
        );
    }
}
