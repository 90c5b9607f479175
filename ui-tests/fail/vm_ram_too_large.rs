// `ram` must fit in a u32.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 4294967296 };
    let _ = config.ram_mib;
}
