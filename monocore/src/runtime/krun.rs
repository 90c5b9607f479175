//! A safe, owning wrapper around one libkrun context.
//!
//! Every `krun_*` call returns `Result`: a negative status becomes
//! [`MonocoreError::Krun`] naming the call and the errno. The context is
//! freed on drop, including when applying a config fails halfway.

use std::{
    ffi::{CStr, CString, c_char},
    ptr,
};

use crate::error::{MonocoreError, MonocoreResult};

/// libkrun reads string arrays as a slice of exactly this many pointers
/// (`slice::from_raw_parts(ptr, MAX_ARGS)`), stopping at the first NULL. Every
/// array we pass is padded with NULLs to at least this length so that slice
/// never reaches past our allocation.
const KRUN_MAX_ARGS: usize = 4096;

/// TSI flag: hijack the guest's `AF_INET`/`AF_INET6` sockets (libkrun
/// `KRUN_TSI_HIJACK_INET`).
pub(crate) const TSI_HIJACK_INET: u32 = 1;

/// The virtio-net offloads libkrun enables for passt in its legacy call
/// (`NET_COMPAT_FEATURES` in libkrun's `src/lib.rs`): checksum offload
/// both ways, TSO4 and UFO both ways.
const NET_COMPAT_FEATURES: u32 = 1 | (1 << 1) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 14);

/// Turns a libkrun status into a `Result`.
pub(crate) fn check(call: &'static str, status: i32) -> MonocoreResult<i32> {
    if status < 0 {
        return Err(MonocoreError::Krun {
            call,
            errno: status.saturating_neg(),
        });
    }
    Ok(status)
}

/// A NULL-terminated array of C strings that owns its strings and stays
/// valid for as long as it lives.
pub(crate) struct CStrArray {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl CStrArray {
    /// Builds the array; the strings are already checked to hold no NUL.
    pub(crate) fn new(strings: Vec<CString>) -> Self {
        let len = strings.len().saturating_add(1).max(KRUN_MAX_ARGS);
        let mut pointers: Vec<*const c_char> = Vec::with_capacity(len);
        pointers.extend(strings.iter().map(|s| s.as_ptr()));
        pointers.resize(len, ptr::null());
        Self {
            _strings: strings,
            pointers,
        }
    }

    /// A pointer to the first element; never NULL, even for an empty array.
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// One libkrun context. Dropping it frees the context.
///
/// The methods mirror the `krun_*` calls monocore uses; each checks its
/// status at once.
#[derive(Debug)]
pub(crate) struct KrunContext {
    id: u32,
}

impl KrunContext {
    /// `krun_create_ctx`.
    pub(crate) fn new() -> MonocoreResult<Self> {
        let id = check("krun_create_ctx", krun::krun_create_ctx())?;
        let id = u32::try_from(id).map_err(|_| MonocoreError::Krun {
            call: "krun_create_ctx",
            errno: libc::EINVAL,
        })?;
        Ok(Self { id })
    }

    /// The libkrun context id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// `krun_set_vm_config`.
    pub(crate) fn set_vm_config(&mut self, num_vcpus: u8, ram_mib: u32) -> MonocoreResult<()> {
        check(
            "krun_set_vm_config",
            krun::krun_set_vm_config(self.id, num_vcpus, ram_mib),
        )
        .map(drop)
    }

    /// `krun_set_root`.
    pub(crate) fn set_root(&mut self, root: &CStr) -> MonocoreResult<()> {
        // SAFETY: `root` is a valid NUL-terminated string that outlives the
        // call; libkrun copies it.
        let status = unsafe { krun::krun_set_root(self.id, root.as_ptr()) };
        check("krun_set_root", status).map(drop)
    }

    /// `krun_add_virtiofs`: shares `host` with the guest under `tag`.
    pub(crate) fn add_virtiofs(&mut self, tag: &CStr, host: &CStr) -> MonocoreResult<()> {
        // SAFETY: both are valid NUL-terminated strings that outlive the call
        // (a NULL path would mean a virtual-only fs; we never pass one);
        // libkrun copies them.
        let status = unsafe { krun::krun_add_virtiofs(self.id, tag.as_ptr(), host.as_ptr()) };
        check("krun_add_virtiofs", status).map(drop)
    }

    /// `krun_disable_implicit_vsock`: no vsock device, hence no TSI.
    pub(crate) fn disable_implicit_vsock(&mut self) -> MonocoreResult<()> {
        check(
            "krun_disable_implicit_vsock",
            krun::krun_disable_implicit_vsock(self.id),
        )
        .map(drop)
    }

    /// `krun_add_vsock` with explicit TSI flags.
    pub(crate) fn add_vsock(&mut self, tsi_flags: u32) -> MonocoreResult<()> {
        check("krun_add_vsock", krun::krun_add_vsock(self.id, tsi_flags)).map(drop)
    }

    /// `krun_add_vsock_port2` with `listen`: the VMM listens on the Unix
    /// socket `path` and connects each client to guest vsock `port`.
    pub(crate) fn add_vsock_port_listen(&mut self, port: u32, path: &CStr) -> MonocoreResult<()> {
        // SAFETY: `path` is a valid NUL-terminated string that outlives the
        // call; libkrun copies it.
        let status = unsafe { krun::krun_add_vsock_port2(self.id, port, path.as_ptr(), true) };
        check("krun_add_vsock_port2", status).map(drop)
    }

    /// `krun_add_net_unixstream` with the fd of a connected stream socket
    /// whose other end is passt (no path: the fd), the guest's MAC address
    /// (never NULL), and the offloads libkrun's passt wiring has always
    /// used. libkrun owns the fd from here on, for the life of the process.
    pub(crate) fn add_net_unixstream(
        &mut self,
        fd: std::os::fd::OwnedFd,
        mac: &[u8; 6],
    ) -> MonocoreResult<()> {
        use std::os::fd::IntoRawFd;
        let fd = fd.into_raw_fd();
        // SAFETY: a NULL path with an open fd selects the fd (libkrun
        // refuses both or neither); `mac` points at 6 readable bytes for
        // the call; the fd is handed over and never closed here.
        let status = unsafe {
            krun::krun_add_net_unixstream(
                self.id,
                std::ptr::null(),
                fd,
                mac.as_ptr(),
                NET_COMPAT_FEATURES,
                0,
            )
        };
        check("krun_add_net_unixstream", status).map(drop)
    }

    /// `krun_set_port_map` with an explicit (possibly empty) array: never
    /// NULL.
    pub(crate) fn set_port_map(&mut self, map: &CStrArray) -> MonocoreResult<()> {
        // SAFETY: `map` is a NULL-terminated array of valid C strings, at
        // least KRUN_MAX_ARGS long, alive for the call; libkrun copies it.
        let status = unsafe { krun::krun_set_port_map(self.id, map.as_ptr()) };
        check("krun_set_port_map", status).map(drop)
    }

    /// `krun_set_kernel` for an ELF kernel (format 1) without an initramfs,
    /// with this command line (which replaces libkrun's default one).
    pub(crate) fn set_kernel_elf(&mut self, path: &CStr, cmdline: &CStr) -> MonocoreResult<()> {
        const KERNEL_FORMAT_ELF: u32 = 1;
        // SAFETY: `path` and `cmdline` are valid NUL-terminated strings that
        // outlive the call (libkrun copies them); a NULL initramfs means none.
        let status = unsafe {
            krun::krun_set_kernel(
                self.id,
                path.as_ptr(),
                KERNEL_FORMAT_ELF,
                ptr::null(),
                cmdline.as_ptr(),
            )
        };
        check("krun_set_kernel", status).map(drop)
    }

    /// `krun_set_exec` with explicit argv and envp arrays: never NULL (a NULL
    /// envp copies the host's environment into the guest).
    pub(crate) fn set_exec(
        &mut self,
        exec_path: &CStr,
        argv: &CStrArray,
        envp: &CStrArray,
    ) -> MonocoreResult<()> {
        // SAFETY: `exec_path` is a valid C string; `argv` and `envp` are
        // NULL-terminated arrays of valid C strings at least KRUN_MAX_ARGS
        // long; all outlive the call and libkrun copies them.
        let status = unsafe {
            krun::krun_set_exec(self.id, exec_path.as_ptr(), argv.as_ptr(), envp.as_ptr())
        };
        check("krun_set_exec", status).map(drop)
    }

    /// `krun_set_console_output`.
    pub(crate) fn set_console_output(&mut self, path: &CStr) -> MonocoreResult<()> {
        // SAFETY: a valid NUL-terminated string alive for the call; copied.
        let status = unsafe { krun::krun_set_console_output(self.id, path.as_ptr()) };
        check("krun_set_console_output", status).map(drop)
    }

    /// `krun_start_enter`. On success it never returns: the VMM runs the
    /// guest and exits the whole process with the guest's exit code. It
    /// returns only when the VM could not be started.
    pub(crate) fn start_enter(self) -> MonocoreError {
        // libkrun removes the context from its table once it gets going; our
        // `Drop` then finds it gone (ENOENT), which is harmless.
        match check("krun_start_enter", krun::krun_start_enter(self.id)) {
            Err(e) => e,
            Ok(status) => MonocoreError::Krun {
                call: "krun_start_enter",
                errno: status,
            },
        }
    }
}

impl Drop for KrunContext {
    fn drop(&mut self) {
        // ENOENT (already consumed by `krun_start_enter`) is the only
        // possible failure, and harmless: libkrun never reuses a context id.
        let _ = krun::krun_free_ctx(self.id);
    }
}

/// Every `krun_*` call name monocore makes, so an error reported by the
/// helper process can be turned back into a typed [`MonocoreError::Krun`].
pub(crate) const CALL_NAMES: &[&str] = &[
    "krun_create_ctx",
    "krun_set_vm_config",
    "krun_set_root",
    "krun_add_virtiofs",
    "krun_disable_implicit_vsock",
    "krun_add_vsock",
    "krun_add_vsock_port2",
    "krun_set_port_map",
    "krun_add_net_unixstream",
    "krun_set_kernel",
    "krun_set_exec",
    "krun_set_console_output",
    "krun_start_enter",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_status_becomes_a_typed_error_with_the_errno() {
        let err = check("krun_set_root", -libc::EINVAL).unwrap_err();
        assert!(matches!(
            err,
            MonocoreError::Krun { call: "krun_set_root", errno } if errno == libc::EINVAL
        ));
        assert_eq!(
            err.to_string(),
            "libkrun call krun_set_root failed with errno 22 (Invalid argument)"
        );
        assert_eq!(check("krun_set_root", 0).unwrap(), 0);
        assert_eq!(check("krun_create_ctx", 7).unwrap(), 7);
    }

    #[test]
    fn a_real_libkrun_failure_maps_to_krun_error() {
        // A freed context: libkrun answers -ENOENT.
        let ctx = KrunContext::new().unwrap();
        let id = ctx.id();
        drop(ctx);
        let mut ghost = KrunContext { id };
        let err = ghost.set_vm_config(1, 128).unwrap_err();
        assert!(
            matches!(err, MonocoreError::Krun { call: "krun_set_vm_config", errno } if errno == libc::ENOENT),
            "{err:?}"
        );
        // Port map with a vsock-less context: -ENODEV.
        let mut ctx = KrunContext::new().unwrap();
        ctx.disable_implicit_vsock().unwrap();
        let err = ctx.set_port_map(&CStrArray::new(Vec::new())).unwrap_err();
        assert!(
            matches!(err, MonocoreError::Krun { call: "krun_set_port_map", errno } if errno == libc::ENODEV),
            "{err:?}"
        );
    }

    #[test]
    fn drop_frees_the_context() {
        let ctx = KrunContext::new().unwrap();
        let id = ctx.id();
        drop(ctx);
        // Freeing again reports ENOENT: the context is gone.
        assert_eq!(krun::krun_free_ctx(id), -libc::ENOENT);
    }

    #[test]
    fn arrays_are_padded_and_never_null() {
        let empty = CStrArray::new(Vec::new());
        assert!(!empty.as_ptr().is_null());
        assert_eq!(empty.pointers.len(), KRUN_MAX_ARGS);
        assert!(empty.pointers.iter().all(|p| p.is_null()));
        let full = CStrArray::new(vec![c"a".to_owned(); KRUN_MAX_ARGS]);
        assert_eq!(full.pointers.len(), KRUN_MAX_ARGS + 1);
        assert!(full.pointers.last().unwrap().is_null());
    }

    #[test]
    fn every_call_name_is_known() {
        // The code of this file, without its tests: every libkrun function
        // it calls (`krun::krun_x(`) and every call name it reports
        // (`"krun_x"`) must be in CALL_NAMES, and every name there must be
        // called, so a helper's `error-krun <name>` always maps back.
        let source = include_str!("krun.rs");
        let code = source.split("#[cfg(test)]").next().unwrap();
        let called: std::collections::BTreeSet<&str> = code
            .match_indices("krun::krun_")
            .map(|(at, _)| {
                let name = &code[at + "krun::".len()..];
                &name[..name.find('(').unwrap()]
            })
            .collect();
        let reported: std::collections::BTreeSet<&str> = code
            .match_indices("\"krun_")
            .map(|(at, _)| {
                let name = &code[at + 1..];
                &name[..name.find('"').unwrap()]
            })
            .collect();
        let known: std::collections::BTreeSet<&str> = CALL_NAMES.iter().copied().collect();
        // krun_free_ctx runs in Drop, where its status is not reported.
        let mut expected_calls = known.clone();
        expected_calls.insert("krun_free_ctx");
        assert_eq!(called, expected_calls, "libkrun calls vs CALL_NAMES");
        assert_eq!(reported, known, "reported names vs CALL_NAMES");
        assert_eq!(known.len(), CALL_NAMES.len(), "a name twice in CALL_NAMES");
    }
}
