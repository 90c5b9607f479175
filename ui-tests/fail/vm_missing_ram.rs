// `ram` is required.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs" };
    let _ = config.ram_mib;
}
