//! `monocore-vmm`: the helper process in which `MicroVm::spawn` runs a VM.
//! Its protocol is private to monocore (see `monocore::vm::helper_main`).

fn main() -> std::process::ExitCode {
    monocore::vm::helper_main()
}
