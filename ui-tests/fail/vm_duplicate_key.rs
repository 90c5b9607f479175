// A key given twice: both places are shown.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        ram: 1024,
    };
    let _ = config.ram_mib;
}
