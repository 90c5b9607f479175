// The `<` wrapper must be closed with `>`.
use monocore::vm;

fn main() {
    let config = vm!(<root: "./rootfs", ram: 512);
    let _ = config.ram_mib;
}
