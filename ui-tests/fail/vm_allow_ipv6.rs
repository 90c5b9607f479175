// The guest network is IPv4 only: an IPv6 entry is refused.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, net: true, allow: ["[2001:db8::1]:443"] };
    let _ = config.ram_mib;
}
