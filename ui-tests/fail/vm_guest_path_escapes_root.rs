// A guest path may not climb above `/`.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, mapped_dirs: ["./data:/app/../../etc"] };
    let _ = config.ram_mib;
}
