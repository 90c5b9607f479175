//! The generated builders: defaults, setters, and `MicroVm::builder()`'s
//! validation.

use std::{net::Ipv4Addr, path::PathBuf};

use typed_path::Utf8UnixPathBuf;

use crate::{
    InvalidMicroVmConfigError as E, MonocoreError,
    config::{DEFAULT_NUM_VCPUS, EnvPair, PathPair, PortPair},
    config::{LinuxRlimit, LogLevel, MicroVm, MicroVmBuilder, MicroVmConfig, MicroVmConfigBuilder},
};

#[test]
fn builder_applies_defaults_to_every_optional_field() {
    let config = MicroVmConfig::builder()
        .root_path("/srv/rootfs")
        .ram_mib(256)
        .build();

    assert_eq!(config.root_path, PathBuf::from("/srv/rootfs"));
    assert_eq!(config.ram_mib, 256);
    assert_eq!(config.log_level, LogLevel::Off);
    assert_eq!(config.num_vcpus, DEFAULT_NUM_VCPUS);
    assert!(config.local_only);
    assert!(config.mapped_dirs.is_empty());
    assert!(config.port_map.is_empty());
    assert!(config.rlimits.is_empty());
    assert!(config.args.is_empty());
    assert!(config.env.is_empty());
    assert_eq!(config.workdir_path, None);
    assert_eq!(config.exec_path, None);
    assert_eq!(config.console_output, None);
    assert_eq!(config.assigned_ip, None);
}

#[test]
fn required_fields_may_be_set_in_either_order() {
    let a = MicroVmConfig::builder().root_path("/r").ram_mib(1).build();
    let b = MicroVmConfig::builder().ram_mib(1).root_path("/r").build();
    assert_eq!(a, b);
    assert_eq!(a, MicroVmConfig::new("/r", 1));
    assert_eq!(
        MicroVmConfigBuilder::default()
            .root_path("/r")
            .ram_mib(1)
            .build(),
        a
    );
}

#[test]
fn every_setter_sets_its_field() {
    let dir: PathPair = "/host:/guest".parse().unwrap();
    let port: PortPair = "8080:80".parse().unwrap();
    let limit: LinuxRlimit = "RLIMIT_NOFILE=1024:2048".parse().unwrap();
    let env: EnvPair = "A=1".parse().unwrap();

    let config = MicroVmConfig::builder()
        .log_level(LogLevel::Debug)
        .root_path(PathBuf::from("/srv/rootfs"))
        .num_vcpus(4)
        .ram_mib(2048)
        .mapped_dirs([dir.clone()])
        .port_map(vec![port])
        .rlimits([limit.clone()])
        .workdir_path("/work")
        .exec_path(Utf8UnixPathBuf::from("/bin/echo"))
        .args(["a", "b"])
        .env([env.clone()])
        .console_output("/tmp/console.log")
        .assigned_ip(Ipv4Addr::new(10, 0, 0, 2))
        .local_only(false)
        .net(true)
        .allow(["127.0.0.1:8080"
            .parse::<crate::config::AllowEntry>()
            .unwrap()])
        .build();

    let expected = MicroVmConfig {
        log_level: LogLevel::Debug,
        root_path: PathBuf::from("/srv/rootfs"),
        num_vcpus: 4,
        ram_mib: 2048,
        mapped_dirs: vec![dir],
        port_map: vec![port],
        net: true,
        allow: vec!["127.0.0.1:8080".parse().unwrap()],
        rlimits: vec![limit],
        workdir_path: Some("/work".into()),
        exec_path: Some("/bin/echo".into()),
        args: vec!["a".to_owned(), "b".to_owned()],
        env: vec![env],
        console_output: Some("/tmp/console.log".into()),
        assigned_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        local_only: false,
    };
    assert_eq!(config, expected);
}

#[test]
fn list_setters_replace_the_earlier_list() {
    let config = MicroVmConfig::builder()
        .root_path("/r")
        .ram_mib(1)
        .args(["first", "second"])
        .args(vec![String::from("third")])
        .num_vcpus(3)
        .num_vcpus(2)
        .build();
    assert_eq!(config.args, ["third"]);
    assert_eq!(config.num_vcpus, 2);
}

#[test]
fn microvm_builder_builds_the_same_config_and_validates_it() {
    let root = tempfile::tempdir().unwrap();
    let vm = MicroVm::builder()
        .root_path(root.path())
        .ram_mib(1024)
        .num_vcpus(2)
        .exec_path("/bin/echo")
        .args(["Hello, World!"])
        .build()
        .unwrap();
    let config = MicroVmConfig::builder()
        .root_path(root.path())
        .ram_mib(1024)
        .num_vcpus(2)
        .exec_path("/bin/echo")
        .args(["Hello, World!"])
        .build();
    assert_eq!(vm.get_config(), &config);
    assert_eq!(
        MicroVmBuilder::default()
            .ram_mib(1024)
            .root_path(root.path())
            .build()
            .unwrap()
            .into_config(),
        MicroVmConfig::new(root.path(), 1024)
    );
}

#[test]
fn microvm_builder_rejects_a_missing_root_directory() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-rootfs");
    let err = MicroVm::builder()
        .root_path(&missing)
        .ram_mib(512)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            MonocoreError::InvalidMicroVmConfig(E { kind: crate::ConfigErrorKind::RootPathDoesNotExist(path), .. }) if *path == missing
        ),
        "{err:?}"
    );
}

#[test]
fn microvm_builder_rejects_zero_ram() {
    let root = tempfile::tempdir().unwrap();
    let err = MicroVm::builder()
        .root_path(root.path())
        .ram_mib(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, MonocoreError::InvalidMicroVmConfig(e) if e.at == crate::Field::Ram.whole()),
        "{err:?}"
    );
}
