// Every argument must be printable ASCII; the bad one is pointed at.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        exec: "/bin/echo",
        args: ["fine", "new\nline"],
    };
    let _ = config.ram_mib;
}
