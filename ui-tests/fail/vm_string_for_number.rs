// A string where a number belongs.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: "1024" };
    let _ = config.ram_mib;
}
