// A misspelt key gets a suggestion.
use monocore::vm;

fn main() {
    let config = vm! { root: "./rootfs", rma: 512 };
    let _ = config.ram_mib;
}
