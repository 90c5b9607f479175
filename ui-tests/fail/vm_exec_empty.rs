// `exec` must be printable ASCII.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, exec: "/bin/ech\to" };
    let _ = config.ram_mib;
}
