// The workdir is an absolute guest path.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, workdir: "app" };
    let _ = config.ram_mib;
}
