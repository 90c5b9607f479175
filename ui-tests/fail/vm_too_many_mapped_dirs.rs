// Each mapped directory takes one of libkrun's interrupt lines, and
// networking one more: 6 fit on x86_64 without networking, 5 with.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        local_only: false,
        mapped_dirs: ["/a:/a", "/b:/b", "/c:/c", "/d:/d", "/e:/e", "/f:/f"],
    };
    let _ = config.ram_mib;
}
