// libkrun 1.19.7 on x86_64 runs at most 128 vCPUs.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, vcpus: 200 };
    let _ = config.ram_mib;
}
