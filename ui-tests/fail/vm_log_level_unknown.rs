// `log_level` is one of the level identifiers.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, log_level: Verbose };
    let _ = config.ram_mib;
}
