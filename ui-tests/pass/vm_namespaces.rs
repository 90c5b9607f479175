// `monocore::vm` is both a module and a macro: one `use` brings in both.
use monocore::vm;

fn main() {
    let a: vm::MicroVmConfig = vm! { root: "./rootfs", ram: 512, log_level: Info };
    let b = monocore::vm!(<root: "./rootfs", ram: 512, log_level: Info>);
    let c = monocore::vm::MicroVmConfig {
        log_level: monocore::vm::LogLevel::Info,
        ..monocore::vm::MicroVmConfig::new("./rootfs", 512)
    };
    assert_eq!(a, b);
    assert_eq!(b, c);
}
