//! monocore's on-disk state: the cache directory, and the private run
//! directory of each VM (and of each private root copy).
//!
//! ```text
//! <cache>/                     cache_dir(): $MONOCORE_CACHE_DIR, else
//!                              $XDG_CACHE_HOME/monocore, else ~/.cache/monocore
//!     busybox-<key>/           the busybox template (crate::rootfs)
//!     runs/run-<id>/           a private root copy for one VM (RunRootfs, ImageRootfs)
//!     vms/run-<id>/            a running VM's run directory (RunDir)
//!     images/                  the OCI image cache (crate::image)
//!     kernel/compat/           the compat kernel (scripts/build-compat-kernel.sh)
//! ```
//!
//! Every directory here is private to this user ([`ensure_private_dir`]);
//! every name inside a run directory is [`RunPaths`]'; a run directory is
//! removed by its owner ([`RunDir`]), or by the next one made beside it once
//! its processes are gone (see [`run_dir`]).

mod cache_dir;
pub(crate) mod run_dir;
pub(crate) mod sweep;

pub use cache_dir::{cache_dir, ensure_private_dir};
pub(crate) use cache_dir::{compat_kernel_dir, images_dir, runs_dir, vms_dir};
pub(crate) use run_dir::{HeldRun, Meta, RunDir, RunPaths};
