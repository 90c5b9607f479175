//! Where a container's VM keeps its private run directory: one directory
//! per container (by namespace and id), so that `delete`, even after the
//! shim was killed and its VM with it, can remove what the VM left.
//!
//! `$MONOCORE_SHIM_RUNS_DIR/<hash>`, by default
//! `<monocore cache dir>/shim/<hash>`: a short path, since the VM's control
//! socket lives inside it and a socket path has at most 107 bytes (a
//! Kubernetes container id alone is 64).

use std::path::PathBuf;

/// The environment variable that moves the per-container directories.
pub const RUNS_ENV: &str = "MONOCORE_SHIM_RUNS_DIR";

/// The directory of container `id` in `namespace`.
pub fn dir(namespace: &str, id: &str) -> PathBuf {
    let parent = match std::env::var_os(RUNS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => monocore::state::cache_dir().join("shim"),
    };
    parent.join(format!("{:016x}", fnv1a(&[namespace, "/", id])))
}

/// Removes container `id`'s directory and all in it; one that is not
/// there is not an error.
pub fn remove(namespace: &str, id: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir(namespace, id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// FNV-1a (64 bits) of the parts, concatenated: a stable name, not a
/// secret (two containers sharing one would only share a parent directory,
/// whose run directories are locked and kept apart by the library).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_short_and_apart() {
        // The FNV-1a test vector.
        assert_eq!(fnv1a(&["a"]), 0xaf63_dc4c_8601_ec8c);
        let k8s = "f".repeat(64);
        let a = dir("k8s.io", &k8s);
        let b = dir("default", &k8s);
        assert_ne!(a, b);
        assert_eq!(a.file_name().unwrap().len(), 16);
    }
}
