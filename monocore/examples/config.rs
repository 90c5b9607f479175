//! Builds a full microVM config from string forms, validates it, and prints
//! it as the VMM will receive it. Then shows the typed error for a bad value.
//!
//! Run: `cargo run -p monocore --example config`

use monocore::MonocoreResult;
use monocore::config::{AllowEntry, EnvPair, PathPair, PortPair};
use monocore::vm::{LinuxRlimit, LogLevel, MicroVmConfig};

fn main() -> MonocoreResult<()> {
    let root = std::env::temp_dir().join("monocore-example-rootfs");
    let shared = root.join("srv-data");
    std::fs::create_dir_all(&shared)?;

    // The builder does not compile without `root_path` and `ram_mib`.
    let mut config = MicroVmConfig::builder()
        .root_path(&root)
        .ram_mib(512)
        .log_level("info".parse::<LogLevel>()?)
        .num_vcpus(2)
        .mapped_dirs([format!("{}:/data", shared.display()).parse::<PathPair>()?])
        // A port map needs networking: with `net`, each host port listens
        // on the host's 127.0.0.1, and the guest reaches what `allow` lists.
        .port_map(["8080:80".parse::<PortPair>()?])
        .net(true)
        .allow(["pypi.org:443".parse::<AllowEntry>()?])
        .rlimits(["RLIMIT_NOFILE=1024:2048".parse::<LinuxRlimit>()?])
        .workdir_path("/data")
        .exec_path("/bin/echo")
        .args(["Hello, World!"])
        .env(["GREETING=hello".parse::<EnvPair>()?])
        .build();
    config.validate()?;
    // What only this host decides (its memory, KVM, the kernel's
    // networking) is checked before a VM starts; say so here.
    let vm = monocore::vm::MicroVm::from_config(config.clone())?;
    if let Err(e) = vm.check_support() {
        println!("note: this host cannot run it as is: {e}");
    }

    println!("valid microVM config:");
    println!("  root       {}", config.root_path.display());
    println!("  vcpus/ram  {} / {} MiB", config.num_vcpus, config.ram_mib);
    for dir in &config.mapped_dirs {
        println!("  volume     {dir}");
    }
    for port in &config.port_map {
        println!("  port       {port}  (host side on 127.0.0.1)");
    }
    for entry in &config.allow {
        println!("  allow      {entry}");
    }
    for limit in &config.rlimits {
        println!("  rlimit     {limit}  (as libkrun reads it)");
    }
    let exec = config
        .exec_path
        .as_ref()
        .map(|p| p.as_str())
        .unwrap_or("(none)");
    println!("  command    {exec} {:?}", config.args);

    println!("\nand what a bad value looks like:");
    config
        .mapped_dirs
        .push(format!("{}:/data/../data/sub", shared.display()).parse()?);
    if let Err(e) = config.validate() {
        println!("  error: {e}");
    }
    config.mapped_dirs.pop();
    config.port_map.push("8081:80".parse()?);
    if let Err(e) = config.validate() {
        println!("  error: {e}");
    }
    if let Err(e) = "RLIMIT_NOFILE=4096:1024".parse::<LinuxRlimit>() {
        println!("  error: {e}");
    }
    Ok(())
}
