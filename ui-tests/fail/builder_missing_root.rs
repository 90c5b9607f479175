// `root_path` is required: `build()` must not compile without it, on the
// validating `MicroVm` builder too.
use monocore::vm::MicroVm;

fn main() {
    let _vm = MicroVm::builder().ram_mib(512).exec_path("/bin/true").build();
}
