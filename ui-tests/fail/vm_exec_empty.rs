// An empty `exec` names no program (spaces and quotes are fine).
use monocore::vm;

fn main() {
    let ok = vm! { root: "./rootfs", ram: 512, exec: "/bin/my \"prog\"" };
    let config = vm! { root: "./rootfs", ram: 512, exec: "" };
    let _ = (ok.ram_mib, config.ram_mib);
}
