// Code written against monocore 0.2.1's builders still compiles: every
// setter, in any order, with the 0.2.1 argument types.
use std::net::Ipv4Addr;
use std::path::PathBuf;

use monocore::config::{EnvPair, PathPair, PortPair};
use monocore::vm::{
    LinuxRlimit, LogLevel, MicroVm, MicroVmBuilder, MicroVmConfig, MicroVmConfigBuilder,
};

fn main() {
    let pair1: PathPair = "/a:/a".parse().unwrap();
    let pair2: PathPair = "/b:/b".parse().unwrap();
    let config: MicroVmConfig = MicroVmConfig::builder()
        .log_level(LogLevel::Info)
        .root_path(PathBuf::from("/tmp"))
        .ram_mib(512)
        .num_vcpus(2)
        .mapped_dirs([pair1, pair2])
        .port_map(["8080:80".parse::<PortPair>().unwrap()])
        .rlimits(vec!["RLIMIT_NOFILE=1:2".parse::<LinuxRlimit>().unwrap()])
        .workdir_path("/work")
        .exec_path("/bin/echo")
        .args(["a", "b"])
        .args(vec![String::from("c")])
        .env(["A=1".parse::<EnvPair>().unwrap()])
        .console_output("/tmp/console.log")
        .assigned_ip(Ipv4Addr::new(10, 0, 0, 2))
        .local_only(false)
        .build();
    assert_eq!(config.args, ["c"]);

    // Required fields in either order; the initial builders have names.
    let _: MicroVmConfig = MicroVmConfigBuilder::default().ram_mib(1).root_path("/").build();
    let _: monocore::MonocoreResult<MicroVm> =
        MicroVmBuilder::default().ram_mib(1).root_path("/").build();
}
