// A string where a list belongs.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", ram: 512, exec: "/bin/echo", args: "hello" };
    let _ = config.ram_mib;
}
