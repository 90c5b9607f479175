// Each mapped directory takes one of libkrun's interrupt lines: 5 fit on
// x86_64, with TSI or without (`net`'s network device takes one more).
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
