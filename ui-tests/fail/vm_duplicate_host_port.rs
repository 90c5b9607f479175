// A host port mapped twice: both places are shown.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, local_only: false, port_map: ["8080:80", "8080:81"] };
    let _ = config.ram_mib;
}
