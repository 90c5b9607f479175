// `ram_mib` is required: `build()` must not compile without it.
use monocore::vm::MicroVmConfig;

fn main() {
    let _config = MicroVmConfig::builder().root_path("/tmp").build();
}
