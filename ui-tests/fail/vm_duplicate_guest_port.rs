// Two host ports for one guest port (libkrun's port map refuses it): both
// places are shown.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, local_only: false, port_map: ["8080:80", "8081:80"] };
    let _ = config.ram_mib;
}
