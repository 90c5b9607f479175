// libkrun 1.19.7 cannot set the guest's IPv4 address.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, ip: "10.0.0.2" };
    let _ = config.ram_mib;
}
