// With neither required field set, both are reported, each by name.
use monocore::vm::{LogLevel, MicroVmConfig};

fn main() {
    let _config = MicroVmConfig::builder().log_level(LogLevel::Info).build();
}
