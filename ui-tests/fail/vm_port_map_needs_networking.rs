// A port map needs networking, which `local_only` (default true) turns off.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, port_map: ["8080:80"] };
    let _ = config.ram_mib;
}
