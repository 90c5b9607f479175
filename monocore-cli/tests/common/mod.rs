//! What the `monocore` command's integration tests share: the binary under
//! test, and a private cache that still boots.

// Each test binary uses a part of this module.
#![allow(dead_code)]
// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

/// The `monocore` binary under test, with the user's default cache
/// (`MONOCORE_CACHE_DIR` unset).
pub fn monocore() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monocore"));
    cmd.env_remove("MONOCORE_CACHE_DIR");
    cmd
}

/// The `monocore` binary under test with the cache `cache` and no docker
/// config (so no credentials of the host's are used).
pub fn monocore_in(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monocore"));
    cmd.env("MONOCORE_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("no-docker-config"));
    cmd
}

/// A private cache directory; the host's compat kernel (if any) is linked
/// in, so the host check passes as it does for the user.
pub fn private_cache() -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    let compat = monocore::kernel::compat_kernel_dir();
    if compat.join("vmlinux").is_file() {
        std::fs::create_dir(cache.path().join("kernel")).unwrap();
        std::os::unix::fs::symlink(&compat, cache.path().join("kernel/compat")).unwrap();
    }
    cache
}
