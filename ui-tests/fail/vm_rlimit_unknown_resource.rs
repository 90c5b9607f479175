// The rlimit resource must be a known name.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, rlimits: ["RLIMIT_FILES=1:2"] };
    let _ = config.ram_mib;
}
