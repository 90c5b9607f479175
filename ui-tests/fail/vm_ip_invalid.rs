// `ip` must be an IPv4 address.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, ip: "10.0.0.256" };
    let _ = config.ram_mib;
}
