// `log_level` is an identifier, not a string.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, log_level: "debug" };
    let _ = config.ram_mib;
}
