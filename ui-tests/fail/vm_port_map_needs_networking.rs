// A port map needs networking: `net` (default false) or TSI (`local_only:
// false`; default true).
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, port_map: ["8080:80"] };
    let _ = config.ram_mib;
}
