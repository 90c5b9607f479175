// `ram` must be at least 1 MiB.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 0 };
    let _ = config.ram_mib;
}
