// A list where a string belongs.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, exec: ["/bin/sh", "-c"] };
    let _ = config.ram_mib;
}
