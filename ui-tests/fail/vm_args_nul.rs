// An argument may hold any character but NUL (newlines and UTF-8 reach the
// guest unchanged); the bad one is pointed at.
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        exec: "/bin/echo",
        args: ["new\nline ✓", "n\0l"],
    };
    let _ = config.ram_mib;
}
