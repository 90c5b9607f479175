// `ram_mib` takes a `u32`, not a string.
use monocore::vm::MicroVmConfig;

fn main() {
    let _config = MicroVmConfig::builder().root_path("/tmp").ram_mib("1024").build();
}
