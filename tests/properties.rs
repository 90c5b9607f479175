//! Property tests for validation and the TOML loader, the same properties as
//! the `validate` and `config_file` fuzz targets (`fuzz/`), with a bounded
//! number of cases so they run on every `cargo test`:
//!
//! * `validate_values` accepts exactly what the independent re-statement of
//!   the rules (`monocore_suite::oracle`) accepts;
//! * its guest-path overlap verdict equals the O(n²) pairwise reference;
//! * an accepted config survives the helper's JSON config channel;
//! * `parse_config` never panics, locates every error inside the text, and
//!   what it accepts passes `validate_values`.
//!
//! The pair types' `Display` → `FromStr` round-trips are in `roundtrip.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may panic

use monocore::config::file::parse_config;
use monocore::config::{AllowEntry, EnvPair, PathPair, PortPair};
use monocore::vm::{LinuxRlimit, LinuxRlimitResource, MicroVmConfig};
use monocore::{ConfigErrorKind, MonocoreError, RuleError};
use monocore_suite::oracle;
use proptest::prelude::*;

/// A path segment, mostly from a small vocabulary so that overlaps, `..`
/// escapes and duplicates are common.
fn seg() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "ab", ".", "..", "", "x:y"]).prop_map(str::to_owned),
        1 => "[a-z.\0 é]{0,3}",
    ]
}

/// A path: optionally absolute, up to 4 segments, optional trailing `/`.
fn path() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.9),
        prop::collection::vec(seg(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(absolute, segs, trailing)| {
            let mut p = if absolute {
                "/".to_owned()
            } else {
                String::new()
            };
            p.push_str(&segs.join("/"));
            if trailing {
                p.push('/');
            }
            p
        })
}

/// A string value: printable words, control and non-ASCII characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["", "hello", "A", "x=y", "/bin/echo", "with space", "~!@#"])
            .prop_map(str::to_owned),
        1 => ".{0,6}",
        1 => path(),
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![3 => 0u16..4, 1 => any::<u16>()]
}

fn limit() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..4, 1 => any::<u64>()]
}

/// An allow-list entry, from a few that overlap in every way (the same
/// entry written twice, a name in two spellings, a network and an address
/// in it, one port apart).
fn allow_entry() -> impl Strategy<Value = AllowEntry> {
    prop::sample::select(vec![
        "127.0.0.1:8080",
        "127.0.0.1:8081",
        "pypi.org:443",
        "PyPI.org.:443",
        "10.1.0.0/16:22",
        "10.1.2.3:22",
        "1.2.3.4:80",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn mapped_dir() -> impl Strategy<Value = PathPair> {
    (text(), path(), any::<bool>()).prop_map(|(host, guest, same)| {
        if same {
            PathPair::with_same(guest.into())
        } else {
            PathPair::with_distinct(host.into(), guest.into())
        }
    })
}

fn config() -> impl Strategy<Value = MicroVmConfig> {
    let scalars = (
        prop_oneof![1 => Just(0u8), 4 => any::<u8>()],
        prop_oneof![1 => Just(0u32), 4 => any::<u32>()],
        prop::option::of(text()),
        prop::collection::vec(text(), 0..3),
        prop::option::of(path()),
        prop::option::of(text()),
    );
    let lists = (
        prop::collection::vec((text(), text()), 0..3),
        prop::collection::vec(mapped_dir(), 0..8),
        prop::collection::vec((port(), port()), 0..4),
        prop::collection::vec((0u32..16, limit(), limit()), 0..4),
        any::<bool>(),
        prop::option::weighted(0.1, any::<[u8; 4]>()),
        any::<bool>(),
        prop::collection::vec(allow_entry(), 0..4),
    );
    (scalars, lists).prop_map(
        |(
            (vcpus, ram, exec, args, workdir, console),
            (env, dirs, ports, rlimits, local_only, ip, net, allow),
        )| {
            let mut c = MicroVmConfig::new("/nonexistent/rootfs", ram);
            c.local_only = local_only;
            c.net = net;
            c.allow = allow;
            c.assigned_ip = ip.map(Into::into);
            c.num_vcpus = vcpus;
            c.exec_path = exec.map(Into::into);
            c.args = args;
            c.workdir_path = workdir.map(Into::into);
            c.console_output = console.map(Into::into);
            c.env = env.into_iter().map(|(n, v)| EnvPair::new(n, v)).collect();
            c.mapped_dirs = dirs;
            c.port_map = ports
                .into_iter()
                .map(|(h, g)| PortPair::with_distinct(h, g))
                .collect();
            c.rlimits = rlimits
                .into_iter()
                .map(|(r, s, h)| LinuxRlimit::new(LinuxRlimitResource::try_from(r).unwrap(), s, h))
                .collect();
            c
        },
    )
}

/// TOML-ish text: `key = value` lines from the real keys, near-misses and
/// values of every type, with the odd syntax error.
fn toml_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "root",
        "ram",
        "vcpus",
        "exec",
        "args",
        "env",
        "workdir",
        "mapped_dirs",
        "port_map",
        "rlimits",
        "console",
        "ip",
        "local_only",
        "net",
        "allow",
        "log_level",
        "rma",
        "memory",
        "[table]",
    ]);
    let value = prop::sample::select(vec![
        "\"rootfs\"",
        "\"data:/data\"",
        "512",
        "0",
        "-1",
        "0x10",
        "4294967296",
        "true",
        "\"info\"",
        "\"10.0.0.2\"",
        "[\"a\", \"b\"]",
        "[\"data:/app\", \"data:/app/x\"]",
        "[\"80\", \"80:81\", \"0\"]",
        "[\"RLIMIT_CPU=2:1\"]",
        "[\"pypi.org:443\", \"127.0.0.1:80\"]",
        "[\"PyPI.org.:443\", \"pypi.org:443\", \"example.com\"]",
        "false",
        "[\"K=V\", \"=x\"]",
        "[\"/\\u0001\"]",
        "\"/../x\"",
        "[1, 2]",
        "\"unterminated",
        "",
    ]);
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..8).prop_map(|lines| {
            lines
                .into_iter()
                .map(|(k, v)| if k.starts_with('[') { k.to_owned() } else { format!("{k} = {v}") })
                .collect::<Vec<_>>()
                .join("\n")
        }),
        1 => ".{0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `validate_values` accepts exactly what the rules say, and a
    /// rejection names a rule the config breaks.
    #[test]
    fn validate_values_accepts_exactly_what_the_rules_say(config in config()) {
        if let Err(message) = oracle::check_against_oracle(&config) {
            prop_assert!(false, "{}", message);
        }
    }

    /// With every mount point valid and nothing else wrong, the overlap
    /// verdict is the O(n²) reference's.
    #[test]
    fn overlap_verdict_equals_the_pairwise_reference(
        guests in prop::collection::vec(path(), 0..=monocore_rules::limits::max_mapped_dirs(false))
    ) {
        let mounts: Vec<Vec<&str>> = guests
            .iter()
            .filter_map(|g| oracle::guest_components(g).filter(|c| !c.is_empty()))
            .filter(|c| c.iter().all(|s| !s.contains(':')))
            .collect();
        let paths: Vec<String> = mounts.iter().map(|c| format!("/{}", c.join("/"))).collect();
        let mut config = MicroVmConfig::new("/nonexistent/rootfs", 64);
        config.mapped_dirs = paths
            .iter()
            .map(|p| PathPair::with_distinct("/host".into(), p.as_str().into()))
            .collect();
        let reference = oracle::reference_overlap(&mounts);
        match config.validate_values() {
            Ok(()) => prop_assert!(reference.is_none(), "missed overlap in {:?}", paths),
            Err(MonocoreError::InvalidMicroVmConfig(e)) if matches!(e.kind, ConfigErrorKind::Rule(RuleError::GuestPathsOverlap { .. })) => {
                let ConfigErrorKind::Rule(RuleError::GuestPathsOverlap { guest: a, first: b, .. }) = e.kind else { unreachable!() };
                prop_assert!(reference.is_some(), "false overlap {:?} / {:?}", a, b);
                let (a, b) = (oracle::guest_components(&a), oracle::guest_components(&b));
                prop_assert!(a.zip(b).is_some_and(|(a, b)| oracle::components_overlap(&a, &b)));
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    /// What `validate_values` accepts crosses the helper's config channel
    /// (serde JSON) unchanged.
    #[test]
    fn accepted_configs_survive_json(config in config()) {
        if config.validate_values().is_ok() {
            let json = serde_json::to_string(&config).unwrap();
            let back: Result<MicroVmConfig, _> = serde_json::from_str(&json);
            prop_assert!(back.is_ok(), "{}: {:?}", json, back.err());
            prop_assert_eq!(back.unwrap(), config);
        }
    }

    /// `parse_config` never panics; errors are located inside the text and
    /// sorted; an accepted config passes every check.
    #[test]
    fn parse_config_locates_errors_and_accepts_only_valid_configs(text in toml_text()) {
        let base = base_dir();
        match parse_config(&text, base.path()) {
            Ok(config) => {
                prop_assert!(config.validate_values().is_ok(), "{:?}", config);
                prop_assert!(config.validate().is_ok(), "{:?}", config);
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                let lines: Vec<&str> = text.split('\n').collect();
                for e in &errors.0 {
                    prop_assert!(e.line >= 1 && e.column >= 1, "{:?}", e);
                    let line = lines.get(e.line - 1);
                    prop_assert!(line.is_some(), "line {} of {}: {:?}", e.line, lines.len(), e);
                    prop_assert!(
                        e.column <= line.unwrap().chars().count() + 1,
                        "column past the line end: {:?}", e
                    );
                }
                prop_assert!(errors
                    .0
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Valid means runnable: what `validate` accepts, `prepare` (every
    /// `krun_*` call short of `krun_start_enter`) accepts, with no
    /// `Unsupported`, NUL or libkrun `EINVAL` error. The kernel is
    /// libkrunfw's, so no host fact is involved.
    #[test]
    fn what_validate_accepts_prepare_accepts(mut config in config()) {
        let base = base_dir();
        config.root_path = base.path().join("rootfs");
        // `net` involves host facts, not rules: prepare finds passt,
        // resolves the allow-list's names and binds the published ports.
        config.net = false;
        config.allow.clear();
        // Host directories that exist, or not.
        for (i, dir) in config.mapped_dirs.iter_mut().enumerate() {
            let host = match i % 3 {
                0 => base.path().join("data"),
                1 => base.path().join("rootfs"),
                _ => std::path::PathBuf::from(dir.get_host().as_str()),
            };
            *dir = PathPair::with_distinct(
                host.to_string_lossy().into_owned().as_str().into(),
                dir.get_guest().clone(),
            );
        }
        if config.validate().is_ok() {
            let vm = monocore::vm::MicroVm::from_config(config.clone()).unwrap();
            let prepared = vm.prepare_with_kernel(&monocore::kernel::KernelChoice::Libkrunfw);
            prop_assert!(prepared.is_ok(), "{:?}: {:?}", prepared.err(), config);
        }
    }
}

/// A base directory with `rootfs/` and `data/`, shared by all cases.
fn base_dir() -> &'static tempfile::TempDir {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        dir
    })
}

/// The test above can fail: a config that breaks a rule is not accepted by
/// the oracle check when validation is bypassed, and the oracle names it.
#[test]
fn oracle_flags_each_broken_rule() {
    let mut c = MicroVmConfig::new("/r", 0);
    c.num_vcpus = 0;
    c.args = vec!["a\0".into()];
    c.mapped_dirs = vec![
        PathPair::with_same("/app".into()),
        PathPair::with_same("/app/./x/".into()),
    ];
    c.port_map = vec![PortPair::with_same(80), PortPair::with_distinct(80, 81)];
    c.rlimits = vec![LinuxRlimit::new(LinuxRlimitResource::RLIMIT_CPU, 2, 1)];
    c.assigned_ip = Some([10, 0, 0, 2].into());
    c.allow = vec![
        "pypi.org:443".parse().unwrap(),
        "PyPI.org.:443".parse().unwrap(),
    ];
    let broken = oracle::violations(&c);
    for rule in [
        oracle::Rule::Vcpus,
        oracle::Rule::Ram,
        oracle::Rule::ArgsNeedExec,
        oracle::Rule::GuestString,
        oracle::Rule::Overlap,
        oracle::Rule::DuplicateHostPort,
        oracle::Rule::NeedsNetworking,
        oracle::Rule::Ip,
        oracle::Rule::SoftExceedsHard,
        oracle::Rule::AllowNeedsNet,
        oracle::Rule::DuplicateAllow,
    ] {
        assert!(broken.contains(&rule), "{rule:?} not in {broken:?}");
    }
    // `net` publishes the port map and opens the allow-list; with TSI on
    // too, the two networks clash.
    c.net = true;
    let broken = oracle::violations(&c);
    assert!(
        !broken.contains(&oracle::Rule::NeedsNetworking),
        "{broken:?}"
    );
    assert!(!broken.contains(&oracle::Rule::AllowNeedsNet), "{broken:?}");
    c.local_only = false;
    assert!(oracle::violations(&c).contains(&oracle::Rule::NetWithTsi));
    assert!(oracle::violations(&MicroVmConfig::new("/r", 1)).is_empty());
}

/// The command's size as `execve` counts it is a rule of its own: strings
/// each within their limit can still break it, the config's own
/// `RLIMIT_STACK` moves the limit, and the oracle and `validate_values`
/// agree on exactly where.
#[test]
fn oracle_and_validation_agree_on_the_command_size() {
    let room = 2 << 20;
    let mut c = MicroVmConfig::new("/r", 1);
    c.exec_path = Some("/x".into());
    // "/x" and 20 arguments of 100 KiB, each with its NUL and pointer.
    let arg = "a".repeat(100 * 1024);
    c.args = vec![arg.clone(); 20];
    let fill = room - oracle::command_bytes(&c) - 9;
    c.args.push("b".repeat(fill));
    assert_eq!(oracle::command_bytes(&c), room);
    assert!(oracle::violations(&c).is_empty());
    assert!(c.validate_values().is_ok());
    c.args.last_mut().unwrap().push('b');
    assert_eq!(oracle::violations(&c), [oracle::Rule::CommandSize]);
    let err = c.validate_values().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid microVM configuration: args: the command"),
        "{err}"
    );
    // A larger stack limit makes room.
    c.rlimits = vec![LinuxRlimit::new(
        LinuxRlimitResource::RLIMIT_STACK,
        64 << 20,
        64 << 20,
    )];
    assert!(oracle::violations(&c).is_empty());
    assert!(c.validate_values().is_ok());
}
