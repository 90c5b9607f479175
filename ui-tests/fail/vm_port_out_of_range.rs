// Ports are u16 and not 0.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, local_only: false, port_map: ["70000:80"] };
    let _ = config.ram_mib;
}
