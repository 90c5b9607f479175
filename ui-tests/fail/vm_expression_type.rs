// An expression of the wrong type is an ordinary rustc error, on the expression.
use monocore::vm;

fn main() {
    let ram: u64 = 1024;
    let config = vm! { root: "./rootfs", ram: ram };
    let _ = config.ram_mib;
}
