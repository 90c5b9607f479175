use std::path::PathBuf;

use tempfile::TempDir;

use crate::{
    InvalidMicroVMConfigError as E, MonocoreError,
    config::{EnvPair, GuestPathError, PathPair, PortPair, limits},
    vm::{LinuxRLimitResource, LinuxRlimit, MicroVmConfig},
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
        Err(MonocoreError::InvalidMicroVMConfig(e)) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn minimal_and_full_configs_are_valid() {
    let f = fixture();
    assert!(config(&f).validate().is_ok());

    let mut c = config(&f);
    c.num_vcpus = 4;
    c.mapped_dirs = vec![pair(&f.host_a, "/app"), pair(&f.host_b, "/data")];
    c.port_map = vec!["8080:80".parse().unwrap(), "443".parse().unwrap()];
    c.rlimits = vec!["RLIMIT_NOFILE=1024:2048".parse().unwrap()];
    c.workdir_path = Some("/app".into());
    c.exec_path = Some("/bin/echo".into());
    c.args = vec!["Hello, World!".into()];
    c.env = vec!["A=1".parse().unwrap(), "EMPTY=".parse().unwrap()];
    c.console_output = Some("/tmp/console.log".into());
    assert_eq!(c.validate_values().ok(), Some(()));
    assert!(c.validate().is_ok(), "{:?}", c.validation_errors());
}

#[test]
fn missing_root_is_reported_with_its_path() {
    let c = MicroVmConfig::new("/non/existent/path", 512);
    assert_eq!(
        first_error(&c),
        E::RootPathDoesNotExist("/non/existent/path".into())
    );
}

#[test]
fn root_that_is_a_file_is_rejected() {
    let f = fixture();
    let file = f.root.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let c = MicroVmConfig::new(&file, 512);
    assert_eq!(first_error(&c), E::RootPathIsNotADirectory(file));
}

#[test]
fn missing_or_non_directory_host_path_is_reported() {
    let f = fixture();
    let mut c = config(&f);
    c.mapped_dirs = vec!["/no/such/dir:/data".parse().unwrap()];
    assert_eq!(
        first_error(&c),
        E::HostPathDoesNotExist("/no/such/dir".into())
    );

    let file = f.root.path().join("file");
    std::fs::write(&file, "x").unwrap();
    c.mapped_dirs = vec![pair(&file, "/data")];
    assert_eq!(
        first_error(&c),
        E::HostPathIsNotADirectory(file.display().to_string())
    );
}

#[test]
fn zero_vcpus_and_zero_ram_are_rejected() {
    let f = fixture();
    let mut c = config(&f);
    c.num_vcpus = 0;
    assert_eq!(first_error(&c), E::NumVCPUsIsZero);
    c.num_vcpus = 1;
    c.ram_mib = 0;
    assert_eq!(first_error(&c), E::RamIsZero);
}

#[test]
fn command_line_strings_must_be_printable_ascii() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/e\tcho".into());
    assert_eq!(
        first_error(&c),
        E::InvalidCommandLineString("/bin/e\tcho".into())
    );

    c.exec_path = Some("/bin/echo".into());
    c.args = vec!["ok".into(), "caf\u{e9}".into()];
    assert_eq!(
        first_error(&c),
        E::InvalidCommandLineString("caf\u{e9}".into())
    );

    c.args.clear();
    c.workdir_path = Some("/work\0dir".into());
    assert_eq!(
        first_error(&c),
        E::InvalidCommandLineString("/work\0dir".into())
    );

    c.workdir_path = None;
    c.env = vec![EnvPair::new("A", "line\nbreak")];
    assert_eq!(
        first_error(&c),
        E::InvalidCommandLineString("A=line\nbreak".into())
    );

    let msg = MicroVmConfig::validate_command_line("a\nb")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(r#""a\nb""#) && msg.contains("'\\n' at byte 1"),
        "{msg}"
    );
}

#[test]
fn env_names_are_checked() {
    let f = fixture();
    let mut c = config(&f);
    c.env = vec![EnvPair::new("", "x")];
    assert_eq!(first_error(&c), E::InvalidEnvName(String::new()));
    c.env = vec![EnvPair::new("A=B", "x")];
    assert_eq!(first_error(&c), E::InvalidEnvName("A=B".into()));
}

#[test]
fn args_without_exec_are_not_silently_dropped() {
    let f = fixture();
    let mut c = config(&f);
    c.args = vec!["hi".into()];
    assert_eq!(first_error(&c), E::ArgsWithoutExecPath(vec!["hi".into()]));
}

#[test]
fn guest_paths_must_be_absolute_and_stay_below_root() {
    let f = fixture();
    let mut c = config(&f);
    c.mapped_dirs = vec![pair(&f.host_a, "relative")];
    assert_eq!(
        first_error(&c),
        E::InvalidGuestPath(GuestPathError::NotAbsolute("relative".into()))
    );

    c.mapped_dirs = vec![pair(&f.host_a, "/../etc")];
    assert_eq!(
        first_error(&c),
        E::InvalidGuestPath(GuestPathError::EscapesRoot("/../etc".into()))
    );

    c.mapped_dirs = vec![pair(&f.host_a, "/app/..")];
    assert_eq!(
        first_error(&c),
        E::InvalidGuestPath(GuestPathError::IsRoot("/app/..".into()))
    );

    c.mapped_dirs.clear();
    c.workdir_path = Some("work".into());
    assert_eq!(
        first_error(&c),
        E::InvalidGuestPath(GuestPathError::NotAbsolute("work".into()))
    );
    c.workdir_path = Some("/a/../..".into());
    assert_eq!(
        first_error(&c),
        E::InvalidGuestPath(GuestPathError::EscapesRoot("/a/../..".into()))
    );
}

#[test]
fn overlapping_guest_paths_are_rejected_after_normalization() {
    let f = fixture();
    let mut c = config(&f);
    for (a, b, conflict) in [
        ("/app", "/app", true),
        ("/app", "/app/data", true),
        ("/var/log", "/var", true),
        ("/app/./data", "/app/data/", true),
        ("/app", "/apple", false),
        ("/app/./data", "/etc//config", false),
    ] {
        c.mapped_dirs = vec![pair(&f.host_a, a), pair(&f.host_b, b)];
        let result = c.validate();
        if conflict {
            assert_eq!(
                first_error(&c),
                E::ConflictingGuestPaths(a.into(), b.into()),
                "{a} {b}"
            );
        } else {
            assert!(result.is_ok(), "{a} {b}: {result:?}");
        }
    }
}

#[test]
fn ports_must_be_nonzero_and_host_ports_unique() {
    let f = fixture();
    let mut c = config(&f);
    c.port_map = vec![PortPair::with_same(0)];
    assert_eq!(first_error(&c), E::PortIsZero);
    c.port_map = vec!["8080:80".parse().unwrap(), "8080:81".parse().unwrap()];
    assert_eq!(first_error(&c), E::DuplicateHostPort(8080));
    c.port_map = vec!["8080:80".parse().unwrap(), "8081:80".parse().unwrap()];
    assert!(c.validate().is_ok());
}

#[test]
fn rlimits_must_have_soft_at_most_hard_and_be_unique() {
    let f = fixture();
    let mut c = config(&f);
    c.rlimits = vec![LinuxRlimit::new(LinuxRLimitResource::RLIMIT_NOFILE, 10, 5)];
    assert_eq!(
        first_error(&c),
        E::RlimitSoftExceedsHard {
            resource: LinuxRLimitResource::RLIMIT_NOFILE,
            soft: 10,
            hard: 5
        }
    );
    c.rlimits = vec![
        "RLIMIT_NOFILE=1:2".parse().unwrap(),
        "7=3:4".parse().unwrap(),
    ];
    assert_eq!(
        first_error(&c),
        E::DuplicateRlimit(LinuxRLimitResource::RLIMIT_NOFILE)
    );
}

#[test]
fn host_paths_with_nul_are_rejected() {
    let f = fixture();
    let mut c = config(&f);
    c.console_output = Some("/tmp/con\0sole".into());
    assert_eq!(first_error(&c), E::InvalidHostPath("/tmp/con\0sole".into()));
}

#[test]
fn oversized_lists_are_rejected_without_being_walked() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/true".into());
    c.args = vec!["\n".to_owned(); limits::MAX_ARGS + 1];
    let errors = c.validation_errors();
    assert_eq!(
        errors,
        vec![E::TooMany {
            what: "arguments",
            count: limits::MAX_ARGS + 1,
            max: limits::MAX_ARGS
        }]
    );
}

#[test]
fn validation_errors_reports_everything_at_once() {
    let c = MicroVmConfig {
        num_vcpus: 0,
        port_map: vec![PortPair::with_same(0)],
        ..MicroVmConfig::new("/no/such/root", 0)
    };
    assert_eq!(
        c.validation_errors(),
        vec![
            E::RootPathDoesNotExist("/no/such/root".into()),
            E::NumVCPUsIsZero,
            E::RamIsZero,
            E::PortIsZero,
        ]
    );
    assert!(c.validate_values().is_err());
}

#[test]
fn a_hundred_thousand_mapped_dirs_are_refused_fast_without_touching_the_host() {
    let f = fixture();
    let mut c = config(&f);
    // Host paths that do not exist: were they stat'ed, the first error would
    // be HostPathDoesNotExist, not TooMany.
    c.mapped_dirs = (0..100_000)
        .map(|i| format!("/no/such/{i}:/m/{i}").parse().unwrap())
        .collect();
    let start = std::time::Instant::now();
    let too_many = E::TooMany {
        what: "mapped directories",
        count: 100_000,
        max: limits::MAX_MAPPED_DIRS,
    };
    assert_eq!(first_error(&c), too_many);
    assert_eq!(c.validation_errors(), vec![too_many.clone()]);
    assert_eq!(
        c.validate_values().unwrap_err().to_string(),
        format!("invalid microVM configuration: {too_many}")
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(500),
        "{elapsed:?}"
    );
}

#[test]
fn a_ten_megabyte_arg_is_a_typed_error_with_a_bounded_message() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/echo".into());
    c.args = vec!["a".repeat(10 << 20)];
    let start = std::time::Instant::now();
    let errors = c.validation_errors();
    assert_eq!(
        errors.first(),
        Some(&E::TooMany {
            what: crate::vm::validate::COMMAND_BYTES,
            count: (10 << 20) + 3 + "/bin/echo".len(),
            max: limits::MAX_COMMAND_LINE_TOTAL,
        })
    );
    assert!(
        matches!(errors.get(1), Some(E::InvalidCommandLineString(s)) if s.len() == 10 << 20),
        "{:?}",
        errors.get(1).map(|e| e.to_string().len())
    );
    // The message names the problem without echoing 10 MB.
    let message = errors[1].to_string();
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.contains("10485760 bytes"), "{message}");
    assert!(start.elapsed() < std::time::Duration::from_millis(500));
}

#[test]
fn the_guest_command_is_bounded_in_total() {
    let f = fixture();
    let mut c = config(&f);
    c.exec_path = Some("/bin/echo".into());
    // Each string is short; with their quoting (3 bytes each) they add up to
    // one byte more than the kernel command line budget.
    let budget = limits::MAX_COMMAND_LINE_TOTAL - "/bin/echo".len();
    let env_len = "A=".len() + 3;
    c.env = vec![EnvPair::new("A", "")];
    c.args = vec!["a".repeat(budget - env_len - 3)];
    c.validate().unwrap();
    c.env = vec![EnvPair::new("A", "b")];
    assert_eq!(
        first_error(&c),
        E::TooMany {
            what: crate::vm::validate::COMMAND_BYTES,
            count: limits::MAX_COMMAND_LINE_TOTAL + 1,
            max: limits::MAX_COMMAND_LINE_TOTAL,
        }
    );
}

/// Regression (found by the `validate` fuzz target and the
/// `accepted_configs_survive_json` property): a `PathPair` built from parts
/// may hold a `:`, which its `host:guest` string form cannot carry. Such a
/// config used to validate, then fail in the VM helper, which reads the
/// config back from JSON (through that string form).
#[test]
fn mapped_dir_paths_with_a_colon_are_rejected_before_the_helper_channel() {
    let f = fixture();
    let colon_dir = f.root.path().join("a:b");
    std::fs::create_dir(&colon_dir).unwrap();
    let colon_host = colon_dir.to_str().unwrap();
    let a = f.host_a.to_str().unwrap();
    for (host, guest) in [(colon_host, "/data"), (a, "/da:ta")] {
        let mut c = config(&f);
        c.mapped_dirs = vec![PathPair::with_distinct(host.into(), guest.into())];
        let shown = format!("{host}:{guest}");
        assert_eq!(first_error(&c), E::InvalidMappedDir(shown.clone()));
        assert!(c.validate_values().is_err());
        assert!(
            c.validation_errors()
                .contains(&E::InvalidMappedDir(shown.clone()))
        );
        // The string form indeed cannot carry it.
        assert!(shown.parse::<PathPair>().is_err());
    }
    let mut c = config(&f);
    c.mapped_dirs = vec![pair(&f.host_a, "/data")];
    c.validate().unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<MicroVmConfig>(&json).unwrap(), c);
}
