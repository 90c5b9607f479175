// The soft limit may not exceed the hard limit.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, rlimits: ["RLIMIT_NOFILE=4096:1024"] };
    let _ = config.ram_mib;
}
