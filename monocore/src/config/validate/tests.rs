use std::path::PathBuf;

use tempfile::TempDir;

use crate::{
    ConfigErrorKind as K, Field, InvalidMicroVmConfigError as E, MonocoreError, RuleError as R,
    config::{
        EnvPair, GuestPathError, GuestStringError, HostPathError, PathPair, PortPair, RangeError,
        limits,
    },
    config::{LinuxRlimit, LinuxRlimitResource, MicroVmConfig},
};

struct Fixture {
    root: TempDir,
    host_a: PathBuf,
    host_b: PathBuf,
}

fn fixture() -> Fixture {
    let root = TempDir::new().unwrap();
    let host_a = root.path().join("a");
    let host_b = root.path().join("b");
    std::fs::create_dir(&host_a).unwrap();
    std::fs::create_dir(&host_b).unwrap();
    Fixture {
        root,
        host_a,
        host_b,
    }
}

fn config(f: &Fixture) -> MicroVmConfig {
    MicroVmConfig::new(f.root.path(), 512)
}

fn pair(host: &std::path::Path, guest: &str) -> PathPair {
    format!("{}:{guest}", host.display()).parse().unwrap()
}

fn first_error(c: &MicroVmConfig) -> E {
    match c.validate() {
        Err(MonocoreError::InvalidMicroVmConfig(e)) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn rule(at: crate::ConfigPath, error: impl Into<R>) -> E {
    E::rule(at, error)
}

#[test]
fn minimal_and_full_configs_are_valid() {
    let f = fixture();
    config(&f).validate().unwrap();
    let mut c = config(&f);
    c.num_vcpus = limits::MAX_VCPUS;
    c.mapped_dirs = vec![pair(&f.host_a, "/a"), pair(&f.host_b, "/b")];
    c.local_only = false;
    c.port_map = vec![PortPair::with_distinct(8080, 80), PortPair::with_same(443)];
    c.rlimits = vec!["RLIMIT_NOFILE=1024:2048".parse().unwrap()];
    c.workdir_path = Some("/a".into());
    c.exec_path = Some("/bin/my program".into());
    c.args = vec!["\"quoted\" and\ttabbed\nlines".into(), "ünïcode ✓".into()];
    c.env = vec![
        EnvPair::new("ÜNICODE", "ü"),
        EnvPair::new("KRUN_INIT", "/not-special"),
    ];
    c.console_output = Some("/tmp/console.log".into());
    c.validate().unwrap();
}

#[test]
fn host_facts_are_located() {
    let f = fixture();
    let c = MicroVmConfig::new("/non/existent/path", 512);
    assert_eq!(
        first_error(&c),
        E {
            at: Field::Root.whole(),
            kind: K::RootPathDoesNotExist("/non/existent/path".into())
        }
    );
    let file = f.root.path().join("file");
    std::fs::write(&file, "").unwrap();
    let mut c = MicroVmConfig::new(&file, 512);
    assert_eq!(
        first_error(&c).kind,
        K::RootPathIsNotADirectory(file.clone())
    );
    c.root_path = f.root.path().into();
    c.mapped_dirs = vec![pair(&f.host_a, "/a"), "/no/such/dir:/data".parse().unwrap()];
    assert_eq!(
        first_error(&c),
        E {
            at: Field::MappedDirs.at(1),
            kind: K::HostPathDoesNotExist("/no/such/dir".into())
        }
    );
    c.mapped_dirs = vec![pair(&file, "/data")];
    assert_eq!(
        first_error(&c).kind,
        K::HostPathIsNotADirectory(file.display().to_string())
    );
}

#[test]
fn ranges_use_the_rules_wording() {
    let f = fixture();
    let mut c = config(&f);
    c.num_vcpus = 0;
    assert_eq!(
        first_error(&c),
        rule(Field::Vcpus.whole(), RangeError::Zero { what: "vcpus" })
    );
    c.num_vcpus = 1;
    c.ram_mib = 0;
    let e = first_error(&c);
    assert_eq!(e.to_string(), "ram: ram (MiB) is 0: at least 1 is required");
    if cfg!(target_arch = "x86_64") {
        c.ram_mib = 1;
        c.num_vcpus = 200;
        assert_eq!(
            first_error(&c).to_string(),
            "vcpus: vcpus is 200: at most 128 is allowed"
        );
    }
}

#[test]
fn any_string_but_nul_reaches_the_guest() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/e\0cho".into());
    assert_eq!(
        first_error(&c),
        rule(
            Field::Exec.whole(),
            GuestStringError::ContainsNul {
                value: "/bin/e\0cho".into(),
                index: 6
            }
        )
    );
    c.exec_path = Some("".into());
    assert_eq!(
        first_error(&c),
        rule(Field::Exec.whole(), GuestStringError::EmptyExec)
    );
    c.exec_path = Some("/bin/echo".into());
    c.args = vec!["ok".into(), "n\0l".into()];
    assert_eq!(first_error(&c).at, Field::Args.at(1));
    c.args.clear();
    c.env = vec![EnvPair::new("A", "ok"), EnvPair::new("B", "x\0")];
    assert_eq!(first_error(&c).at, Field::Env.at(1));
}

#[test]
fn env_names_are_checked() {
    let f = fixture();
    let mut c = config(&f);
    c.env = vec![EnvPair::new("", "x")];
    assert!(matches!(
        first_error(&c).rule_error(),
        Some(R::EnvName { name, .. }) if name.is_empty()
    ));
    c.env = vec![EnvPair::new("A=B", "x")];
    assert_eq!(first_error(&c).at, Field::Env.at(0));
}

#[test]
fn args_without_exec_are_not_silently_dropped() {
    let f = fixture();
    let mut c = config(&f);
    c.args = vec!["hi".into()];
    assert_eq!(
        first_error(&c),
        rule(Field::Args.whole(), R::ArgsWithoutExec { count: 1 })
    );
}

#[test]
fn guest_paths_must_be_absolute_and_stay_below_root() {
    let f = fixture();
    let mut c = config(&f);
    c.mapped_dirs = vec![pair(&f.host_a, "relative")];
    assert_eq!(
        first_error(&c),
        rule(
            Field::MappedDirs.at(0),
            GuestPathError::NotAbsolute("relative".into())
        )
    );
    c.mapped_dirs = vec![pair(&f.host_a, "/app/..")];
    assert_eq!(
        first_error(&c).kind,
        K::Rule(GuestPathError::IsRoot("/app/..".into()).into())
    );
    c.mapped_dirs.clear();
    c.workdir_path = Some("".into());
    assert_eq!(
        first_error(&c),
        rule(Field::Workdir.whole(), GuestPathError::Empty)
    );
}

#[test]
fn overlap_is_checked_over_the_entries_that_are_valid() {
    let f = fixture();
    let mut c = config(&f);
    c.mapped_dirs = vec![
        pair(&f.host_a, "/app"),
        pair(&f.host_a, "relative"),
        pair(&f.host_b, "/app/./data/"),
    ];
    let errors = c.validation_errors();
    assert_eq!(
        errors.iter().map(|e| e.at).collect::<Vec<_>>(),
        [Field::MappedDirs.at(1), Field::MappedDirs.at(2)]
    );
    assert_eq!(
        errors[1].rule_error(),
        Some(&R::GuestPathsOverlap {
            guest: "/app/./data/".into(),
            first: "/app".into(),
            first_index: 0
        })
    );
}

#[test]
fn ports_are_nonzero_each_mapped_once_and_need_networking() {
    let f = fixture();
    let mut c = config(&f);
    c.port_map = vec![PortPair::with_same(80)];
    assert_eq!(
        first_error(&c),
        rule(
            Field::PortMap.at(0),
            R::PortMapNeedsNetworking {
                pair: "80:80".into()
            }
        )
    );
    c.local_only = false;
    c.validate().unwrap();
    c.port_map = vec![
        PortPair::with_distinct(0, 80),
        PortPair::with_distinct(8080, 80),
        PortPair::with_distinct(8080, 81),
        PortPair::with_distinct(8081, 80),
    ];
    let errors = c.validation_errors();
    assert_eq!(
        errors,
        [
            rule(
                Field::PortMap.at(0),
                R::PortZero {
                    pair: "0:80".into()
                }
            ),
            rule(
                Field::PortMap.at(2),
                R::DuplicateHostPort {
                    port: 8080,
                    first_index: 1
                }
            ),
            rule(
                Field::PortMap.at(3),
                R::DuplicateGuestPort {
                    port: 80,
                    first_index: 1
                }
            ),
        ]
    );
}

#[test]
fn net_publishes_the_port_map_and_its_allow_list_is_checked() {
    let f = fixture();
    let mut c = config(&f);
    c.port_map = vec![PortPair::with_distinct(8080, 80)];
    c.net = true;
    c.allow = ["127.0.0.1:5432", "pypi.org:443", "10.1.0.0/16:22"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    c.validate().unwrap();

    // An entry twice, however written, at the repeat.
    c.allow.push("PyPI.org.:443".parse().unwrap());
    assert_eq!(
        c.validation_errors(),
        [rule(
            Field::Allow.at(3),
            R::DuplicateAllow {
                entry: "pypi.org:443".into(),
                first_index: 1
            }
        )]
    );
    c.allow.pop();

    // Without `net`: the allow-list at its first entry, and the port map.
    c.net = false;
    let errors = c.validation_errors();
    assert_eq!(
        errors,
        [
            rule(
                Field::PortMap.at(0),
                R::PortMapNeedsNetworking {
                    pair: "8080:80".into()
                }
            ),
            rule(
                Field::Allow.at(0),
                R::AllowNeedsNet {
                    entry: "127.0.0.1:5432".into()
                }
            ),
        ]
    );
    assert_eq!(
        errors[1].to_string(),
        "allow[0]: allow-list entry 127.0.0.1:5432 needs `net`, which is off: without it the guest has no network interface, and the allow-list opens nothing; set `net` to true"
    );

    // `net` with TSI: at `net`, whatever else holds.
    c.net = true;
    c.local_only = false;
    let e = first_error(&c);
    assert_eq!(e, rule(Field::Net.whole(), R::NetWithTsi));
    assert_eq!(
        e.to_string(),
        "net: `net` and TSI exclude each other: TSI lets the guest connect to any address the host can reach, around `net`'s allow-list; leave `local_only` true (no TSI)"
    );
}

#[test]
fn the_allow_list_has_a_length_limit() {
    let f = fixture();
    let mut c = config(&f);
    c.net = true;
    c.allow = (1..=limits::MAX_ALLOW_ENTRIES)
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    c.validate().unwrap();
    c.allow.push("127.0.0.1:9999".parse().unwrap());
    assert_eq!(
        first_error(&c),
        rule(
            Field::Allow.whole(),
            R::TooMany {
                field: Field::Allow,
                count: limits::MAX_ALLOW_ENTRIES + 1,
                max: limits::MAX_ALLOW_ENTRIES
            }
        )
    );
}

#[test]
fn ip_is_refused() {
    let f = fixture();
    let mut c = config(&f);
    c.assigned_ip = Some("10.0.0.2".parse().unwrap());
    let e = first_error(&c);
    assert_eq!(e.at, Field::Ip.whole());
    assert!(e.to_string().ends_with("; remove `ip`"), "{e}");
}

#[test]
fn rlimits_must_have_soft_at_most_hard_and_be_unique() {
    let f = fixture();
    let mut c = config(&f);
    c.rlimits = vec![
        LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1, 2),
        LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 4096, 1024),
    ];
    assert_eq!(
        c.validation_errors(),
        [
            rule(
                Field::Rlimits.at(1),
                R::SoftExceedsHard {
                    resource: 7,
                    soft: 4096,
                    hard: 1024
                }
            ),
            rule(
                Field::Rlimits.at(1),
                R::DuplicateRlimit {
                    resource: 7,
                    first_index: 0
                }
            ),
        ]
    );
}

#[test]
fn host_paths_with_nul_are_rejected() {
    let f = fixture();
    let mut c = config(&f);
    c.console_output = Some("/tmp/con\0sole".into());
    assert_eq!(
        first_error(&c),
        rule(
            Field::Console.whole(),
            HostPathError::ContainsNul("/tmp/con\0sole".into())
        )
    );
}

#[test]
fn mapped_dirs_fit_libkrun_s_interrupt_lines() {
    let f = fixture();
    let mut c = config(&f);
    let max = limits::max_mapped_dirs(false);
    c.mapped_dirs = (0..max)
        .map(|i| pair(&f.host_a, &format!("/m{i}")))
        .collect();
    c.validate().unwrap();
    // TSI shares the vsock device every VM has: no fewer dirs.
    c.local_only = false;
    c.validate().unwrap();
    c.mapped_dirs.push(pair(&f.host_a, "/one-more"));
    assert_eq!(
        first_error(&c),
        rule(
            Field::MappedDirs.whole(),
            R::TooMany {
                field: Field::MappedDirs,
                count: max + 1,
                max
            }
        )
    );
    // `net`'s network device takes one of the lines.
    c.mapped_dirs.truncate(max);
    c.local_only = true;
    c.net = true;
    assert_eq!(
        first_error(&c),
        rule(
            Field::MappedDirs.whole(),
            R::TooMany {
                field: Field::MappedDirs,
                count: max,
                max: max - 1
            }
        )
    );
    c.mapped_dirs.pop();
    c.validate().unwrap();
}

#[test]
fn validation_errors_reports_everything_at_once_in_field_order() {
    let mut c = MicroVmConfig::new("/no/such/root", 0);
    c.num_vcpus = 0;
    c.local_only = false;
    c.port_map = vec![PortPair::with_distinct(0, 1)];
    let at: Vec<String> = c
        .validation_errors()
        .iter()
        .map(|e| e.at.to_string())
        .collect();
    assert_eq!(at, ["root", "ram", "vcpus", "port_map[0]"]);
}

#[test]
fn a_hundred_thousand_mapped_dirs_are_refused_fast_without_touching_the_host() {
    let mut c = MicroVmConfig::new("/no/such/root", 1);
    c.mapped_dirs = (0..100_000)
        .map(|i| format!("/no/such/{i}:/m{i}").parse().unwrap())
        .collect();
    let start = std::time::Instant::now();
    let errors = c.validation_errors();
    assert!(start.elapsed() < std::time::Duration::from_millis(500));
    assert_eq!(
        errors.iter().map(|e| e.at.to_string()).collect::<Vec<_>>(),
        ["root", "mapped_dirs"]
    );
}

#[test]
fn a_ten_megabyte_arg_is_a_typed_error_with_a_bounded_message() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/echo".into());
    c.args = vec!["a".repeat(10 << 20)];
    let errors = c.validation_errors();
    assert_eq!(
        errors.iter().map(|e| e.at).collect::<Vec<_>>(),
        [Field::Args.whole(), Field::Args.at(0)]
    );
    assert!(matches!(
        errors[0].rule_error(),
        Some(R::CommandTooLarge { .. })
    ));
    assert!(errors.iter().all(|e| e.to_string().len() < 600));
}

#[test]
fn mapped_dir_paths_with_a_colon_are_rejected_before_the_helper_channel() {
    let f = fixture();
    let mut c = config(&f);
    c.mapped_dirs = vec![PathPair::with_distinct(
        f.host_a.display().to_string().as_str().into(),
        "/da:ta".into(),
    )];
    assert!(matches!(
        first_error(&c).rule_error(),
        Some(R::MappedDirColon { .. })
    ));
}
