// The struct field name is not the key; the key is suggested.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram_mib: 512 };
    let _ = config.ram_mib;
}
