// An env entry needs `NAME=value`.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, env: ["GREETING=hi", "NOEQUALS"] };
    let _ = config.ram_mib;
}
