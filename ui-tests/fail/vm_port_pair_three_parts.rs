// A port pair has one `:`.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, local_only: false, port_map: ["8080:80:90"] };
    let _ = config.ram_mib;
}
