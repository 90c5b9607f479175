// `vcpus` is 1 to `MAX_VCPUS`: 128 on x86_64, 255 elsewhere; 256 never fits.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, vcpus: 256 };
    let _ = config.ram_mib;
}
