use super::*;
use crate::egress::parse_egress_rule;
use crate::limits::{MAX_ALLOW_ENTRIES, MAX_ARGS, MAX_STRING_LEN, command_space, max_mapped_dirs};
use crate::{GuestPathError, GuestStringError, HostPathError, RangeError};

fn view<'a>() -> ConfigView<'a> {
    ConfigView::new(Known::Now(Path::new("/srv/rootfs")), Known::Now(512))
}

fn env<'a>(name: &'a str, value: &'a str) -> Known<EnvVar<'a>> {
    Known::Now(EnvVar { name, value })
}

fn dir<'a>(host: &'a str, guest: &'a str) -> Known<MappedDir<'a>> {
    Known::Now(MappedDir { host, guest })
}

fn port(host: u16, guest: u16) -> Known<PortMapping> {
    Known::Now(PortMapping { host, guest })
}

fn limit(resource: u32, soft: u64, hard: u64) -> Known<Rlimit> {
    Known::Now(Rlimit {
        resource,
        soft,
        hard,
    })
}

fn paths(errors: &[(ConfigPath, RuleError)]) -> Vec<String> {
    errors.iter().map(|(at, _)| at.to_string()).collect()
}

#[test]
fn a_valid_config_has_no_errors() {
    assert_eq!(check_config(&view()), []);
    let mut v = view();
    v.vcpus = Some(Known::Now(2));
    v.exec = Some(Known::Now("/bin/echo"));
    v.args = known_list(["hello", "two words"]);
    v.env = Known::Now(vec![env("A", "b")]);
    v.workdir = Some(Known::Now("/app"));
    v.mapped_dirs = Known::Now(vec![dir("/data", "/data"), dir("./x", "/x")]);
    v.port_map = Known::Now(vec![port(8080, 80), port(443, 443)]);
    v.rlimits = Known::Now(vec![limit(7, 1024, 2048)]);
    v.console = Some(Known::Now("/tmp/console.log"));
    v.local_only = Known::Now(false);
    assert_eq!(check_config(&v), []);
    // The other network: `net`, its allow-list and the port map published
    // on the host's 127.0.0.1.
    let (a, b) = (rule("127.0.0.1:8080"), rule("pypi.org:443"));
    v.local_only = Known::Now(true);
    v.net = Known::Now(true);
    v.allow = known_list([&a, &b]);
    assert_eq!(check_config(&v), []);
}

fn rule(s: &str) -> EgressRule {
    parse_egress_rule(s).unwrap()
}

#[test]
fn every_kind_of_problem_is_reported_at_its_path_in_field_order() {
    let mut v = ConfigView::new(Known::Now(Path::new("")), Known::Now(0));
    v.vcpus = Some(Known::Now(0));
    v.exec = Some(Known::Now(""));
    v.args = known_list(["ok", "n\0l"]);
    v.env = Known::Now(vec![env("", "x"), env("A", "b")]);
    v.workdir = Some(Known::Now("relative"));
    v.mapped_dirs = Known::Now(vec![dir("/h", "/app"), dir("", "/b"), dir("/h", "/app/x")]);
    v.port_map = Known::Now(vec![port(0, 1), port(80, 80), port(80, 81)]);
    v.rlimits = Known::Now(vec![limit(7, 2, 1), limit(7, 1, 1)]);
    v.console = Some(Known::Now(""));
    v.ip = Some(Known::Now(Ipv4Addr::new(10, 0, 0, 2)));
    let errors = check_config(&v);
    assert_eq!(
        paths(&errors),
        [
            "root",
            "ram",
            "vcpus",
            "exec",
            "args[1]",
            "env[0]",
            "workdir",
            "mapped_dirs[1]",
            "mapped_dirs[2]",
            "port_map[0]",
            "port_map[0]",
            "port_map[2]",
            "rlimits[0]",
            "rlimits[1]",
            "console",
            "ip",
        ]
    );
    let kinds: Vec<&RuleError> = errors.iter().map(|(_, e)| e).collect();
    assert!(matches!(
        kinds[0],
        RuleError::HostPath(HostPathError::Empty)
    ));
    assert!(matches!(
        kinds[1],
        RuleError::Range(RangeError::Zero { .. })
    ));
    assert!(matches!(
        kinds[3],
        RuleError::GuestString(GuestStringError::EmptyExec)
    ));
    assert!(matches!(kinds[5], RuleError::EnvName { .. }));
    assert!(matches!(
        kinds[6],
        RuleError::GuestPath(GuestPathError::NotAbsolute(_))
    ));
    assert!(matches!(kinds[9], RuleError::PortZero { .. }));
    assert!(matches!(kinds[10], RuleError::PortMapNeedsNetworking { pair } if pair == "0:1"));
    assert!(matches!(kinds[12], RuleError::SoftExceedsHard { .. }));
    assert!(matches!(
        kinds[14],
        RuleError::HostPath(HostPathError::Empty)
    ));
    assert!(matches!(kinds[15], RuleError::IpUnsupported { .. }));
}

#[test]
fn the_first_index_of_an_overlap_or_a_duplicate_is_the_place_in_the_list() {
    let mut v = view();
    v.local_only = Known::Now(false);
    // Unknown and invalid items before and between keep their places.
    v.mapped_dirs = Known::Now(vec![
        Known::Later,
        dir("/h", "/app"),
        dir("/h", "rel"),
        dir("/h", "/app/./x/"),
    ]);
    v.port_map = Known::Now(vec![Known::Later, port(80, 80), Known::Later, port(80, 81)]);
    v.rlimits = Known::Now(vec![
        limit(3, 1 << 20, 1 << 20),
        Known::Later,
        limit(3, 1, 1),
    ]);
    assert_eq!(
        check_config(&v),
        [
            (
                Field::MappedDirs.at(2),
                GuestPathError::NotAbsolute("rel".into()).into()
            ),
            (
                Field::MappedDirs.at(3),
                RuleError::GuestPathsOverlap {
                    guest: "/app/./x/".into(),
                    first: "/app".into(),
                    first_index: 1
                }
            ),
            (
                Field::PortMap.at(3),
                RuleError::DuplicateHostPort {
                    port: 80,
                    first_index: 1
                }
            ),
            (
                Field::Rlimits.at(2),
                RuleError::DuplicateRlimit {
                    resource: 3,
                    first_index: 0
                }
            ),
        ]
    );
}

#[test]
fn a_value_not_known_until_run_time_is_never_reported() {
    let mut v = ConfigView::new(Known::Later, Known::Later);
    v.vcpus = Some(Known::Later);
    v.exec = Some(Known::Later);
    v.args = Known::Later;
    v.env = Known::Later;
    v.workdir = Some(Known::Later);
    v.mapped_dirs = Known::Later;
    v.port_map = Known::Later;
    v.rlimits = Known::Later;
    v.console = Some(Known::Later);
    v.ip = Some(Known::Later);
    v.local_only = Known::Later;
    v.net = Known::Later;
    v.allow = Known::Later;
    assert_eq!(check_config(&v), []);
    // Lists of unknown items, and known items that need an unknown value.
    let a = rule("pypi.org:443");
    v.args = Known::Now(vec![Known::Later; 3]);
    v.env = Known::Now(vec![Known::Later]);
    v.mapped_dirs = Known::Now(vec![Known::Later, dir("/h", "/a")]);
    v.port_map = Known::Now(vec![port(80, 80)]);
    v.allow = Known::Now(vec![Known::Now(&a), Known::Later]);
    v.rlimits = Known::Now(vec![Known::Later]);
    assert_eq!(check_config(&v), []);
}

#[test]
fn args_need_an_exec_even_one_known_at_run_time_only() {
    let mut v = view();
    v.args = Known::Now(vec![Known::Later, Known::Now("a")]);
    assert_eq!(
        check_config(&v),
        [(Field::Args.whole(), RuleError::ArgsWithoutExec { count: 2 })]
    );
    v.exec = Some(Known::Later);
    assert_eq!(check_config(&v), []);
    // Arguments of unknown number may be none.
    v.exec = None;
    v.args = Known::Later;
    assert_eq!(check_config(&v), []);
}

#[test]
fn the_port_map_needs_networking_only_when_net_is_known_false_and_local_only_true() {
    let mut v = view();
    v.port_map = Known::Now(vec![Known::Later]);
    assert_eq!(
        check_config(&v),
        [(
            Field::PortMap.at(0),
            RuleError::PortMapNeedsNetworking {
                pair: "port_map[0]".into()
            }
        )]
    );
    v.local_only = Known::Later;
    assert_eq!(check_config(&v), []);
    v.local_only = Known::Now(true);
    v.net = Known::Later;
    assert_eq!(check_config(&v), []);
    // `net` publishes the port map (on the host's 127.0.0.1).
    v.net = Known::Now(true);
    v.port_map = Known::Now(vec![port(8080, 80)]);
    assert_eq!(check_config(&v), []);
    v.net = Known::Now(false);
    assert_eq!(
        check_config(&v),
        [(
            Field::PortMap.at(0),
            RuleError::PortMapNeedsNetworking {
                pair: "8080:80".into()
            }
        )]
    );
    v.local_only = Known::Now(true);
    v.port_map = Known::Later;
    assert_eq!(check_config(&v), []);
}

#[test]
fn the_allow_list_needs_net_only_when_net_is_known_false() {
    let (a, b) = (rule("pypi.org:443"), rule("10.1.0.0/16:22"));
    let mut v = view();
    v.allow = known_list([&a, &b]);
    assert_eq!(
        check_config(&v),
        [(
            Field::Allow.at(0),
            RuleError::AllowNeedsNet {
                entry: "pypi.org:443".into()
            }
        )]
    );
    assert_eq!(check_config(&v)[0].1.fix(), Some(crate::Fix::EnableNet));
    // The first entry not known: named by its place.
    v.allow = Known::Now(vec![Known::Later, Known::Now(&b)]);
    assert_eq!(
        check_config(&v),
        [(
            Field::Allow.at(0),
            RuleError::AllowNeedsNet {
                entry: "allow[0]".into()
            }
        )]
    );
    v.net = Known::Later;
    assert_eq!(check_config(&v), []);
    v.net = Known::Now(true);
    assert_eq!(check_config(&v), []);
    // An empty or unknown list needs nothing.
    v.net = Known::Now(false);
    v.allow = Known::Now(Vec::new());
    assert_eq!(check_config(&v), []);
    v.allow = Known::Later;
    assert_eq!(check_config(&v), []);
}

#[test]
fn net_and_tsi_exclude_each_other_only_when_both_are_known_on() {
    let mut v = view();
    v.net = Known::Now(true);
    v.local_only = Known::Now(false);
    let errors = check_config(&v);
    assert_eq!(errors, [(Field::Net.whole(), RuleError::NetWithTsi)]);
    assert_eq!(errors[0].1.fix(), Some(crate::Fix::DisableNetworking));
    v.local_only = Known::Later;
    assert_eq!(check_config(&v), []);
    v.local_only = Known::Now(false);
    v.net = Known::Later;
    assert_eq!(check_config(&v), []);
    v.net = Known::Now(false);
    assert_eq!(check_config(&v), []);
}

#[test]
fn an_allow_entry_twice_is_reported_at_the_repeat_with_the_first_index() {
    let (a, b, a2) = (
        rule("pypi.org:443"),
        rule("127.0.0.1:8080"),
        rule("PyPI.org.:443"),
    );
    let mut v = view();
    v.net = Known::Now(true);
    // Unknown items keep their places.
    v.allow = Known::Now(vec![
        Known::Later,
        Known::Now(&a),
        Known::Now(&b),
        Known::Later,
        Known::Now(&a2),
        Known::Now(&b),
    ]);
    assert_eq!(
        check_config(&v),
        [
            (
                Field::Allow.at(4),
                RuleError::DuplicateAllow {
                    entry: "pypi.org:443".into(),
                    first_index: 1
                }
            ),
            (
                Field::Allow.at(5),
                RuleError::DuplicateAllow {
                    entry: "127.0.0.1:8080".into(),
                    first_index: 2
                }
            ),
        ]
    );
}

#[test]
fn net_and_allow_problems_are_reported_in_field_order() {
    let a = rule("pypi.org:443");
    let mut v = view();
    v.port_map = Known::Now(vec![port(8080, 80)]);
    v.allow = known_list([&a, &a]);
    v.rlimits = Known::Now(vec![limit(7, 2, 1)]);
    assert_eq!(
        paths(&check_config(&v)),
        ["port_map[0]", "allow[0]", "allow[1]", "rlimits[0]"]
    );
    v.net = Known::Now(true);
    v.local_only = Known::Now(false);
    assert_eq!(paths(&check_config(&v)), ["net", "allow[1]", "rlimits[0]"]);
}

#[test]
fn a_list_over_its_limit_is_reported_whole_and_not_walked() {
    let mut v = view();
    v.exec = Some(Known::Now("/bin/echo"));
    v.args = known_list(vec!["\0"; MAX_ARGS + 1]);
    v.mapped_dirs = Known::Now(vec![Known::Later; max_mapped_dirs(false) + 1]);
    v.net = Known::Later;
    let errors = check_config(&v);
    assert_eq!(paths(&errors), ["args", "mapped_dirs"]);
    assert!(matches!(
        errors[1].1,
        RuleError::TooMany {
            field: Field::MappedDirs,
            ..
        }
    ));
}

#[test]
fn net_s_network_device_takes_one_mapped_directory_s_interrupt_line() {
    let mut v = view();
    v.mapped_dirs = Known::Now(vec![Known::Later; max_mapped_dirs(true) + 1]);
    assert_eq!(check_config(&v), []);
    // TSI shares the vsock device every VM has.
    v.local_only = Known::Now(false);
    assert_eq!(check_config(&v), []);
    v.local_only = Known::Now(true);
    // With `net` unknown, too many only if too many either way.
    v.net = Known::Later;
    assert_eq!(check_config(&v), []);
    v.net = Known::Now(true);
    assert_eq!(
        check_config(&v),
        [(
            Field::MappedDirs.whole(),
            RuleError::TooMany {
                field: Field::MappedDirs,
                count: max_mapped_dirs(true) + 1,
                max: max_mapped_dirs(true)
            }
        )]
    );
}

#[test]
fn an_allow_list_over_its_limit_is_reported_whole_and_not_walked() {
    let a = rule("pypi.org:443");
    let mut v = view();
    // Every entry the same, and `net` off: only the length is reported.
    v.allow = known_list(vec![&a; MAX_ALLOW_ENTRIES + 1]);
    assert_eq!(
        check_config(&v),
        [(
            Field::Allow.whole(),
            RuleError::TooMany {
                field: Field::Allow,
                count: MAX_ALLOW_ENTRIES + 1,
                max: MAX_ALLOW_ENTRIES
            }
        )]
    );
    v.net = Known::Now(true);
    v.allow = Known::Now(vec![Known::Later; MAX_ALLOW_ENTRIES]);
    assert_eq!(check_config(&v), []);
}

#[test]
fn the_command_size_is_a_lower_bound_when_some_of_it_is_unknown() {
    let room = command_space(None);
    let big = "a".repeat(MAX_STRING_LEN);
    let n = room / (MAX_STRING_LEN + 9) + 1;
    let mut v = view();
    v.exec = Some(Known::Later);
    v.args = known_list(vec![big.as_str(); n]);
    let errors = check_config(&v);
    assert_eq!(paths(&errors), ["args"]);
    assert!(matches!(errors[0].1, RuleError::CommandTooLarge { .. }));
    // Unknown items add only their NUL and pointer.
    v.args = Known::Now(vec![Known::Later; n]);
    assert_eq!(check_config(&v), []);
    // With the arguments unknown, the known environment is at fault.
    v.args = Known::Later;
    let value = &big[2..]; // `A=` and the value: a whole string
    v.env = Known::Now(vec![env("A", value); n]);
    assert_eq!(paths(&check_config(&v)), ["env"]);
    // A stack limit that may be unknown gives the most room.
    v.rlimits = Known::Now(vec![Known::Later]);
    assert_eq!(check_config(&v), []);
    v.rlimits = Known::Now(vec![limit(3, 64 << 20, 64 << 20)]);
    assert_eq!(check_config(&v), []);
    v.rlimits = Known::Now(vec![limit(7, 1, 1)]);
    assert_eq!(paths(&check_config(&v)), ["env"]);
}

#[test]
fn ranges_and_the_root_are_rules_of_the_view_too() {
    let mut v = ConfigView::new(Known::Now(Path::new("/r")), Known::Now(1 << 32));
    v.vcpus = Some(Known::Now(-1));
    assert_eq!(
        check_config(&v),
        [
            (
                Field::Ram.whole(),
                RangeError::TooLarge {
                    what: "ram (MiB)",
                    value: 1 << 32,
                    max: u32::MAX.into()
                }
                .into()
            ),
            (
                Field::Vcpus.whole(),
                RangeError::Negative {
                    what: "vcpus",
                    value: -1
                }
                .into()
            ),
        ]
    );
}
