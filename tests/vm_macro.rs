//! Run-pass tests of the `vm!` macro: every key, literals mixed with
//! expressions, every delimiter form and the `<…>` wrapper, each compared with
//! the same config written by hand.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use monocore::config::egress::{EgressHost, EgressRule};
use monocore::config::{AllowEntry, EnvPair, PathPair, PortPair};
use monocore::typed_path::Utf8UnixPathBuf;
use monocore::vm;
use monocore::vm::{LinuxRlimit, LinuxRlimitResource, LogLevel, MicroVmConfig};

/// Every key, all literals, by hand.
fn full_by_hand() -> MicroVmConfig {
    let mut c = MicroVmConfig::new("./rootfs", 1024);
    c.num_vcpus = 4;
    c.exec_path = Some(Utf8UnixPathBuf::from("/bin/echo"));
    c.args = vec!["Hello".into(), "from a microVM".into()];
    c.env = vec![EnvPair::new("GREETING", "hello"), EnvPair::new("EMPTY", "")];
    c.workdir_path = Some(Utf8UnixPathBuf::from("/app"));
    c.mapped_dirs = vec![
        PathPair::with_distinct("./data".into(), "/data".into()),
        PathPair::with_same("/srv".into()),
    ];
    c.port_map = vec![PortPair::with_distinct(8080, 80), PortPair::with_same(443)];
    c.rlimits = vec![
        LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 2048),
        LinuxRlimit::new(LinuxRlimitResource::RLIMIT_CPU, 10, 20),
    ];
    c.console_output = Some(Utf8UnixPathBuf::from("./console.log"));
    c.local_only = false;
    c.log_level = LogLevel::Info;
    c
}

/// Every key, all literals, through `vm!`.
fn full_by_macro() -> MicroVmConfig {
    vm! {
        root: "./rootfs",
        ram: 1024,
        vcpus: 4,
        exec: "/bin/echo",
        args: ["Hello", "from a microVM"],
        env: ["GREETING=hello", "EMPTY="],
        workdir: "/app",
        mapped_dirs: ["./data:/data", "/srv"],
        port_map: ["8080:80", "443"],
        rlimits: ["RLIMIT_NOFILE=1024:2048", "0=10:20"],
        console: "./console.log",
        local_only: false,
        log_level: Info,
    }
}

#[test]
fn every_key_as_a_literal_equals_the_config_built_by_hand() {
    let config = full_by_macro();
    assert_eq!(config, full_by_hand());
    // The string forms and the macro agree: the same literals parsed at run
    // time give the same values.
    assert_eq!(
        config.port_map,
        [
            "8080:80".parse::<PortPair>().unwrap(),
            "443".parse().unwrap()
        ]
    );
    assert_eq!(
        config.rlimits,
        [
            "RLIMIT_NOFILE=1024:2048".parse::<LinuxRlimit>().unwrap(),
            "0=10:20".parse().unwrap()
        ]
    );
    assert_eq!(
        config.mapped_dirs,
        [
            "./data:/data".parse::<PathPair>().unwrap(),
            "/srv".parse().unwrap()
        ]
    );
}

#[test]
fn every_key_as_an_expression_equals_the_config_built_by_hand() {
    let root = PathBuf::from("./rootfs");
    let ram: u32 = 1024;
    let vcpus: u8 = 4;
    let exec = String::from("/bin/echo");
    let args = vec!["Hello", "from a microVM"];
    let env = vec![EnvPair::new("GREETING", "hello"), EnvPair::new("EMPTY", "")];
    let workdir = "/app";
    let dirs = [
        PathPair::with_distinct("./data".into(), "/data".into()),
        PathPair::with_same("/srv".into()),
    ];
    let ports = vec![PortPair::with_distinct(8080, 80), PortPair::with_same(443)];
    let rlimits = full_by_hand().rlimits;
    let console = Utf8UnixPathBuf::from("./console.log");
    let local_only = false;
    let level = LogLevel::Info;

    let config = vm! {
        root: root,
        ram: ram,
        vcpus: vcpus,
        exec: exec,
        args: args,
        env: env,
        workdir: workdir,
        mapped_dirs: dirs,
        port_map: ports.into_iter().filter(|p| p.get_host() != 0),
        rlimits: rlimits,
        console: console,
        local_only: local_only,
        log_level: level,
    };
    assert_eq!(config, full_by_hand());
}

#[test]
fn literals_and_expressions_mix_in_one_call_and_in_one_list() {
    let greeting = "Hello".to_string();
    let extra_port = PortPair::with_same(443);
    let nofile = LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 2048);
    let config = vm! {
        root: "./rootfs",
        ram: 512 * 2,
        vcpus: 4,
        exec: "/bin/echo",
        args: [greeting, "from a microVM"],
        env: [EnvPair::new("GREETING", "hello"), "EMPTY="],
        workdir: "/app",
        mapped_dirs: ["./data:/data", PathPair::with_same("/srv".into())],
        port_map: ["8080:80", extra_port],
        rlimits: [nofile, "RLIMIT_CPU=10:20"],
        console: "./console.log",
        local_only: 1 + 1 == 3,
        log_level: LogLevel::Info,
    };
    assert_eq!(config, full_by_hand());
}

/// `net`, its allow-list and a port map (published on the host's
/// 127.0.0.1), by hand.
fn net_by_hand() -> MicroVmConfig {
    let mut c = MicroVmConfig::new("./rootfs", 512);
    c.net = true;
    c.allow = vec![
        AllowEntry::from(EgressRule {
            host: EgressHost::Addr(Ipv4Addr::LOCALHOST),
            port: 5432,
        }),
        AllowEntry::from(EgressRule {
            host: EgressHost::Name("pypi.org".into()),
            port: 443,
        }),
        AllowEntry::from(EgressRule {
            host: EgressHost::Net(Ipv4Addr::new(10, 1, 0, 0), 16),
            port: 22,
        }),
    ];
    c.port_map = vec![PortPair::with_distinct(8080, 80)];
    c
}

#[test]
fn net_and_allow_as_literals_and_expressions_equal_the_config_built_by_hand() {
    let expected = net_by_hand();
    let literal = vm! {
        root: "./rootfs",
        ram: 512,
        net: true,
        allow: ["127.0.0.1:5432", "PyPI.org.:443", "10.1.0.0/16:22"],
        port_map: ["8080:80"],
    };
    assert_eq!(literal, expected);
    // The literals are what `AllowEntry::from_str` makes of them.
    let parsed: Vec<AllowEntry> = ["127.0.0.1:5432", "PyPI.org.:443", "10.1.0.0/16:22"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(literal.allow, parsed);
    literal.validate_values().unwrap();

    let on = 1 + 1 == 2;
    let db: AllowEntry = "127.0.0.1:5432".parse().unwrap();
    let mixed = vm! {
        root: "./rootfs",
        ram: 512,
        net: on,
        allow: [db.clone(), "pypi.org:443", expected.allow[2].clone()],
        port_map: ["8080:80"],
    };
    assert_eq!(mixed, expected);
    let whole = vm! {
        root: "./rootfs",
        ram: 512,
        net: on,
        allow: expected.allow.iter().cloned(),
        port_map: expected.port_map.clone(),
    };
    assert_eq!(whole, expected);
    let built = MicroVmConfig::builder()
        .root_path("./rootfs")
        .ram_mib(512)
        .net(true)
        .allow(parsed)
        .port_map([PortPair::with_distinct(8080, 80)])
        .build();
    assert_eq!(built, expected);
}

/// An allow-list known only at run time compiles without `net`, and
/// validation refuses it there, at its first entry, with the same rule.
#[test]
fn an_allow_expression_without_net_is_refused_at_run_time() {
    let entries: Vec<AllowEntry> = vec!["pypi.org:443".parse().unwrap()];
    let config = vm! { root: "/r", ram: 1, allow: entries };
    assert!(matches!(
        config.validate_values(),
        Err(monocore::MonocoreError::InvalidMicroVmConfig(e))
            if e.at == monocore::Field::Allow.at(0)
                && matches!(e.rule_error(), Some(monocore::RuleError::AllowNeedsNet { .. }))
    ));
}

#[test]
fn every_delimiter_form_and_the_angle_wrapper_give_the_same_config() {
    let expected = MicroVmConfig::new("./rootfs", 512);
    let forms = [
        vm! { root: "./rootfs", ram: 512 },
        vm!(root: "./rootfs", ram: 512),
        vm![root: "./rootfs", ram: 512,],
        vm! { <root: "./rootfs", ram: 512> },
        vm!(<root: "./rootfs", ram: 512,>),
        vm![<root: "./rootfs", ram: 512>],
        monocore::vm!(root: "./rootfs", ram: 512),
    ];
    for (i, config) in forms.iter().enumerate() {
        assert_eq!(config, &expected, "form {i}");
    }
}

#[test]
fn the_angle_wrapper_leaves_a_comparison_in_the_last_value_alone() {
    let (a, b) = (1, 2);
    let config = vm!(<root: "./rootfs", ram: 512, local_only: a > b>);
    assert!(!config.local_only);
}

#[test]
fn keys_not_given_keep_the_defaults_of_new() {
    let config = vm! { root: "/r", ram: 1 };
    assert_eq!(config, MicroVmConfig::new("/r", 1));
    assert_eq!(config.num_vcpus, monocore::config::DEFAULT_NUM_VCPUS);
    assert!(config.local_only);
    assert!(!config.net && config.allow.is_empty());
    assert_eq!(config.log_level, LogLevel::Off);
    // Order of keys does not matter.
    assert_eq!(
        vm! { vcpus: 2, ram: 1, root: "/r" },
        vm! { root: "/r", ram: 1, vcpus: 2 }
    );
}

#[test]
fn every_log_level_identifier_maps_to_its_variant() {
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Off).log_level,
        LogLevel::Off
    );
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Error).log_level,
        LogLevel::Error
    );
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Warn).log_level,
        LogLevel::Warn
    );
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Info).log_level,
        LogLevel::Info
    );
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Debug).log_level,
        LogLevel::Debug
    );
    assert_eq!(
        vm!(root: "/r", ram: 1, log_level: Trace).log_level,
        LogLevel::Trace
    );
}

#[test]
fn bounds_are_accepted_at_their_limits() {
    let config =
        vm! { root: "/r", ram: 4294967295, vcpus: 128, port_map: ["65535:1"], local_only: false };
    assert_eq!(config.ram_mib, u32::MAX);
    assert_eq!(config.num_vcpus, 128);
    assert_eq!(config.port_map, [PortPair::with_distinct(65535, 1)]);
}

#[test]
fn empty_lists_are_allowed() {
    let config = vm! { root: "/r", ram: 1, args: [], env: [], mapped_dirs: [], port_map: [], allow: [], rlimits: [] };
    assert_eq!(config, MicroVmConfig::new("/r", 1));
}

/// `ip` as an expression compiles (its value is known at run time), and
/// validation refuses it: libkrun cannot set the guest's address. As a
/// literal it does not compile (`ui-tests/fail/vm_ip_unsupported.rs`).
#[test]
fn an_ip_expression_is_refused_at_run_time() {
    let ip = [10, 0, 0, 2];
    let config = vm! { root: "/r", ram: 1, ip: ip };
    assert_eq!(config.assigned_ip, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert!(matches!(
        config.validate_values(),
        Err(monocore::MonocoreError::InvalidMicroVmConfig(e)) if e.at == monocore::Field::Ip.whole()
    ));
}

#[test]
fn a_bad_expression_value_is_caught_at_run_time_by_the_same_rules() {
    let ram = 0;
    let config = vm! { root: "/r", ram: ram };
    assert!(matches!(
        config.validate_values(),
        Err(monocore::MonocoreError::InvalidMicroVmConfig(e)) if e.at == monocore::Field::Ram.whole()
    ));
}

#[test]
fn a_literal_config_passes_run_time_validation() {
    let root = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap().to_owned();
    let config = vm! {
        root: root.path(),
        ram: 512,
        exec: "/bin/echo",
        args: ["Hello", "from a microVM"],
        env: ["GREETING=hello"],
        workdir: "/app/./x/..",
        mapped_dirs: [PathPair::with_distinct(data.as_str().into(), "/data".into()), "/tmp:/tmp/../scratch"],
        port_map: ["8080:80", "8081:81"],
        local_only: false,
        rlimits: ["RLIMIT_NOFILE=1024:2048"],
        log_level: Debug,
    };
    config.validate().unwrap();
    let vm = monocore::vm::MicroVm::from_config(config.clone()).unwrap();
    assert_eq!(vm.get_config(), &config);
}

#[test]
fn the_expansion_equals_the_same_config_built_with_the_builder() {
    let from_macro = full_by_macro();
    let from_builder = MicroVmConfig::builder()
        .root_path("./rootfs")
        .ram_mib(1024)
        .num_vcpus(4)
        .exec_path("/bin/echo")
        .args(["Hello", "from a microVM"])
        .env([EnvPair::new("GREETING", "hello"), EnvPair::new("EMPTY", "")])
        .workdir_path("/app")
        .mapped_dirs([
            "./data:/data".parse::<PathPair>().unwrap(),
            "/srv".parse().unwrap(),
        ])
        .port_map([
            "8080:80".parse::<PortPair>().unwrap(),
            "443".parse().unwrap(),
        ])
        .rlimits([
            "RLIMIT_NOFILE=1024:2048".parse::<LinuxRlimit>().unwrap(),
            "0=10:20".parse().unwrap(),
        ])
        .console_output("./console.log")
        .local_only(false)
        .log_level(LogLevel::Info)
        .build();
    assert_eq!(from_macro, from_builder);
    // And the minimal forms agree too, defaults included.
    assert_eq!(
        vm!(root: "./rootfs", ram: 512),
        MicroVmConfig::builder()
            .root_path(PathBuf::from("./rootfs"))
            .ram_mib(512)
            .build()
    );
}
