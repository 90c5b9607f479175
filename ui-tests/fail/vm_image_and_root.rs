// `image` and `root` are two ways to give the guest's root filesystem.
use monocore::vm;

fn main() {
    let config = vm! { image: "alpine:3.20", root: "./rootfs", ram: 256 };
    let _ = config.ram_mib;
}
