// An allow-list opens nothing without `net` (default false).
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, allow: ["pypi.org:443", "127.0.0.1:5432"] };
    let _ = config.ram_mib;
}
