//! Tells dependents (monocore's build script) where the agent's sources are:
//! `DEP_MONOCORE_AGENT_SRC` is this package's `src` directory.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::metadata=src={dir}/src");
}
