// Each allow-list entry once, however it is written.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        net: true,
        allow: ["pypi.org:443", "10.1.0.0/16:22", "PyPI.org.:443"],
    };
    let _ = config.ram_mib;
}
