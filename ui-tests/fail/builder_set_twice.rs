// A required field is set exactly once: a second `.root_path(..)` is an error.
use monocore::vm::MicroVmConfig;

fn main() {
    let _config = MicroVmConfig::builder()
        .root_path("/srv/a")
        .ram_mib(512)
        .root_path("/srv/b")
        .build();
}
