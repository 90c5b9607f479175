// Each allow-list entry names one TCP port: `HOST:PORT`.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, net: true, allow: ["pypi.org:443", "example.com"] };
    let _ = config.ram_mib;
}
