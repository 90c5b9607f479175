// `net` and TSI (`local_only: false`) exclude each other: TSI would let the
// guest around the allow-list.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, net: true, local_only: false };
    let _ = config.ram_mib;
}
