//! Build script of the monocore workspace's root package.
//!
//! monocore statically links the libkrun VMM, but the guest kernel comes from
//! `libkrunfw.so.5`, which libkrun loads with `dlopen` when a VM starts. A
//! missing libkrunfw does not stop the build, so this script looks for it and
//! warns, with the install command, at build time rather than leaving the
//! user to find out at the first boot. The tests and benchmarks read the
//! result through `MONOCORE_BUILD_LIBKRUNFW` (the path found, or empty).

use std::path::{Path, PathBuf};

const LIBKRUNFW: &str = "libkrunfw.so.5";

const INSTALL_HINT: &str = "install it with: echo 'deb http://deb.debian.org/debian forky main' \
     > /etc/apt/sources.list.d/forky.list && apt-get update && apt-get install -t forky libkrunfw5 \
     (or run ./scripts/setup.sh)";

fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/usr/local/lib64",
        "/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

fn find_libkrunfw(dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| d.join(LIBKRUNFW))
        .find(|p| Path::new(p).exists())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LD_LIBRARY_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    let dirs = search_dirs();
    for dir in &dirs {
        if dir.exists() {
            println!("cargo:rerun-if-changed={}", dir.join(LIBKRUNFW).display());
        }
    }
    match find_libkrunfw(&dirs) {
        Some(path) => println!(
            "cargo:rustc-env=MONOCORE_BUILD_LIBKRUNFW={}",
            path.display()
        ),
        None => {
            println!("cargo:rustc-env=MONOCORE_BUILD_LIBKRUNFW=");
            println!(
                "cargo:warning={LIBKRUNFW} (the guest kernel) was not found: microVMs cannot boot \
                 on this host until it is installed; {INSTALL_HINT}"
            );
        }
    }
}
