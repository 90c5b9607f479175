// Two mapped directories may not nest: both are shown.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        mapped_dirs: ["./app:/app", "./logs:/var/log", "./data:/app/data"],
    };
    let _ = config.ram_mib;
}
