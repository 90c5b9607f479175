//! Builds the guest agent for the library to embed.
//!
//! The agent (package `monocore-agent`) runs inside every microVM, so it must
//! be a static binary for the guest's architecture (the host's: KVM runs
//! guests of the host's kind). Cargo cannot build a dependency's binary with
//! other flags, so this script compiles the agent's sources, found through
//! the `links` metadata `DEP_MONOCORE_AGENT_SRC`, with the same `rustc`:
//! first its library (the protocol), then its `main.rs` (with the guest
//! code, `src/guest/`, which only the binary has) against it, statically
//! linked (`-C target-feature=+crt-static` on the gnu target), optimised for
//! size, with `panic=abort`. The library embeds the result
//! (`MONOCORE_AGENT_BIN`), so programs that depend on monocore need no
//! second binary and no extra build step. The agent package therefore has
//! no dependencies: `rustc` alone has no other crate to link.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn fail(message: &str) -> ! {
    eprintln!("error: building monocore's guest agent: {message}");
    std::process::exit(1)
}

fn var(name: &str) -> String {
    println!("cargo::rerun-if-env-changed={name}");
    std::env::var(name).unwrap_or_else(|_| fail(&format!("${name} is not set")))
}

fn rustc(rustc: &str, target: &str, args: &[&str], what: &str) {
    let status = Command::new(rustc)
        .args([
            "--edition=2024",
            "--target",
            target,
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
            "--cap-lints",
            "warn",
        ])
        .args(args)
        // The agent is built on its own terms: the flags of the build around
        // it (sanitizers, coverage, wrappers) do not apply to it.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run {rustc}: {e}")));
    if !status.success() {
        fail(&format!(
            "rustc failed on {what} ({status}); a static build needs the C library's static \
             archives (Debian: libc6-dev)"
        ));
    }
}

fn main() {
    let src = PathBuf::from(var("DEP_MONOCORE_AGENT_SRC"));
    let out = PathBuf::from(var("OUT_DIR"));
    let rustc_path = var("RUSTC");
    let target = var("TARGET");
    println!("cargo::rerun-if-changed={}", src.display());
    println!("cargo::rerun-if-changed=build.rs");

    let path = |p: &Path| -> String {
        p.to_str()
            .unwrap_or_else(|| fail(&format!("non-UTF-8 path {}", p.display())))
            .to_owned()
    };
    let lib = out.join("libmonocore_agent.rlib");
    rustc(
        &rustc_path,
        &target,
        &[
            "--crate-name=monocore_agent",
            "--crate-type=rlib",
            "-o",
            &path(&lib),
            &path(&src.join("lib.rs")),
        ],
        "the agent library",
    );
    let bin = out.join("monocore-agent");
    rustc(
        &rustc_path,
        &target,
        &[
            "--crate-name=monocore_agent_main",
            "--crate-type=bin",
            "-C",
            "lto=fat",
            "-C",
            "strip=symbols",
            "--extern",
            &format!("monocore_agent={}", path(&lib)),
            "-o",
            &path(&bin),
            &path(&src.join("main.rs")),
        ],
        "the agent binary",
    );
    println!("cargo::rustc-env=MONOCORE_AGENT_BIN={}", path(&bin));
}
