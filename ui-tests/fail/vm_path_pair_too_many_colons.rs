// A path pair has at most one `:`.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, mapped_dirs: ["./a:/b:/c"] };
    let _ = config.ram_mib;
}
