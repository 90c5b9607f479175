// `vcpus` is 1 to 255.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, vcpus: 256 };
    let _ = config.ram_mib;
}
