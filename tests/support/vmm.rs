//! The VM helper used by the integration tests and benchmarks; identical to
//! `monocore-vmm`.

fn main() -> std::process::ExitCode {
    monocore::vm::helper_main()
}
