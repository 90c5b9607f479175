// A guest path must be absolute.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, mapped_dirs: ["./data:data"] };
    let _ = config.ram_mib;
}
