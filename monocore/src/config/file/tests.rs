use std::path::Path;

use super::*;
use crate::config::{LogLevel, PortPair};
use monocore_rules::limits;

fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    dir
}

fn errors(text: &str, base: &Path) -> Vec<String> {
    parse_config(text, base)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_full_file_parses_into_the_same_config_as_built_by_hand() {
    let dir = rootfs();
    let text = r#"
root = "rootfs"
ram = 512
vcpus = 2
exec = "/bin/echo"
args = ["Hello", "from a microVM"]
env = ["GREETING=hello", "EMPTY="]
workdir = "/data"
mapped_dirs = ["data:/data"]
port_map = ["8080:80", "443"]
rlimits = ["RLIMIT_NOFILE=1024:2048"]
console = "/tmp/console.log"
local_only = false
log_level = "debug"
"#;
    let config = parse_config(text, dir.path()).unwrap();
    let mut expected = MicroVmConfig::new(dir.path().join("rootfs"), 512);
    expected.num_vcpus = 2;
    expected.exec_path = Some("/bin/echo".into());
    expected.args = vec!["Hello".into(), "from a microVM".into()];
    expected.env = vec!["GREETING=hello".parse().unwrap(), "EMPTY=".parse().unwrap()];
    expected.workdir_path = Some("/data".into());
    expected.mapped_dirs = vec![
        format!("{}:/data", dir.path().join("data").display())
            .parse()
            .unwrap(),
    ];
    expected.port_map = vec!["8080:80".parse().unwrap(), "443".parse().unwrap()];
    expected.rlimits = vec!["RLIMIT_NOFILE=1024:2048".parse().unwrap()];
    expected.console_output = Some("/tmp/console.log".into());
    expected.local_only = false;
    expected.log_level = LogLevel::Debug;
    assert_eq!(config, expected);
}

#[test]
fn every_problem_is_reported_with_line_and_column() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = \"1024\"\nvcpus = 300\nport_map = [\"8080:80:90\", 7]\nrlimits = [\"RLIMIT_NOFILE=2:1\"]\nip = \"10.0.0\"\nexecc = \"/bin/sh\"\nlocal_only = 1\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "2:7: `ram`: expected an integer, found string",
            "3:9: `vcpus`: vcpus is 300: at most 128 is allowed",
            "4:13: `port_map`: invalid port pair \"8080:80:90\": expected `host:guest` with one `:`",
            "4:27: `port_map`: expected a string, found integer",
            "5:12: `rlimits`: invalid resource limit \"RLIMIT_NOFILE=2:1\": the soft limit 2 exceeds the hard limit 1",
            "6:6: `ip`: invalid IPv4 address \"10.0.0\": expected four numbers from 0 to 255 separated by dots, such as \"10.0.0.2\"",
            "7:1: unknown key `execc`: did you mean `exec`?",
            "8:14: `local_only`: expected true or false, found integer",
        ]
    );
}

#[test]
fn missing_required_keys_and_syntax_errors_are_reported() {
    let dir = rootfs();
    assert_eq!(
        errors("vcpus = 1\n", dir.path()),
        [
            "1:1: missing required key `root`",
            "1:1: missing required key `ram`"
        ]
    );
    let syntax = errors("root = \"rootfs\"\nram = \n", dir.path());
    assert!(
        syntax.first().is_some_and(|e| e.starts_with("2:")),
        "{syntax:?}"
    );
}

#[test]
fn validation_errors_point_at_the_offending_element() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 0\nmapped_dirs = [\"data:/app\", \"data:/app/sub\"]\nport_map = [\"80:80\", \"80:81\"]\nargs = [\"a\"]\nlocal_only = false\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "2:7: `ram`: ram (MiB) is 0: at least 1 is required",
            "3:29: `mapped_dirs`: guest path `/app/sub` overlaps `/app`: two mapped directories cannot share or nest mount points",
            "4:22: `port_map`: host port 80 is mapped twice: each host port may be mapped once",
            "5:8: `args`: 1 argument(s) given without an exec path: they have no program to run; add `exec`, the program to run",
        ]
    );
}

#[test]
fn missing_root_is_located_at_the_root_key() {
    let dir = tempfile::tempdir().unwrap();
    let errs = errors("ram = 64\nroot = \"nope\"\n", dir.path());
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("2:8: `root`: root path does not exist: "),
        "{errs:?}"
    );
}

#[test]
fn integers_in_other_radixes_and_negative_values() {
    let dir = rootfs();
    let config = parse_config("root = \"rootfs\"\nram = 0x10\nvcpus = 0b11\n", dir.path()).unwrap();
    assert_eq!((config.ram_mib, config.num_vcpus), (16, 3));
    assert_eq!(
        errors("root = \"rootfs\"\nram = -5\n", dir.path()),
        ["2:7: `ram`: ram (MiB) is -5: at least 1 is required"]
    );
}

#[test]
fn line_column_counts_chars() {
    assert_eq!(line_column("ab\ncé\nx", 0), (1, 1));
    assert_eq!(line_column("ab\ncé\nx", 3), (2, 1));
    assert_eq!(line_column("ab\ncé\nx", 7), (3, 1));
    assert_eq!(line_column("ab", 99), (1, 3));
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let dir = rootfs();
    let text = format!(
        "root = \"rootfs\"\nram = 1\n#{}\n",
        "x".repeat(limits::MAX_CONFIG_FILE_LEN)
    );
    assert_eq!(
        errors(&text, dir.path()),
        [format!(
            "1:1: the config file is {} bytes long: at most {} bytes are allowed",
            text.len(),
            limits::MAX_CONFIG_FILE_LEN
        )]
    );
    // Through the loader: at most the limit (plus one byte) is read.
    let path = dir.path().join("big.toml");
    std::fs::write(&path, &text).unwrap();
    let err = load_config(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "1 problem(s) in the config file:\n  1:1: the config file is longer than {0} bytes: at most {0} bytes are allowed",
            limits::MAX_CONFIG_FILE_LEN
        )
    );
}

#[test]
fn an_endless_file_is_refused_not_read_to_exhaustion() {
    let err = load_config(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(err, crate::MonocoreError::ConfigFile(_)), "{err}");
}

#[test]
fn a_hundred_thousand_mapped_dirs_in_a_file_are_refused_fast() {
    let dir = rootfs();
    let list: Vec<String> = (0..100_000).map(|i| format!("\"/{i:x}\"")).collect();
    let text = format!(
        "root = \"rootfs\"\nram = 1\nmapped_dirs = [{}]\n",
        list.join(",")
    );
    assert!(text.len() <= limits::MAX_CONFIG_FILE_LEN);
    let start = std::time::Instant::now();
    assert_eq!(
        errors(&text, dir.path()),
        [format!(
            "3:15: `mapped_dirs`: too many mapped_dirs: 100000 given, at most {} allowed ({})",
            limits::max_mapped_dirs(false),
            limits::MAPPED_DIRS_REASON
        )]
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed < std::time::Duration::from_millis(900),
        "{elapsed:?}"
    );
}

#[test]
fn deeply_nested_values_are_an_error_not_a_stack_overflow() {
    let dir = rootfs();
    let depth = limits::MAX_CONFIG_FILE_LEN / 2 - 64;
    let text = format!(
        "root = \"rootfs\"\nram = 1\nargs = {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let errors = parse_config(&text, dir.path()).unwrap_err();
    assert!(!errors.0.is_empty());
}

#[test]
fn a_ten_megabyte_arg_in_a_file_is_refused() {
    let dir = rootfs();
    // The file limit comes first.
    let text = format!(
        "root = \"rootfs\"\nram = 1\nexec = \"/x\"\nargs = [\"{}\"]\n",
        "a".repeat(10 << 20)
    );
    assert!(errors(&text, dir.path())[0].contains("at most 1048576 bytes are allowed"));
    // Within the file limit, the string limit applies, located at the element.
    let text = format!(
        "root = \"rootfs\"\nram = 1\nexec = \"/x\"\nargs = [\"{}\"]\n",
        "a".repeat(limits::MAX_STRING_LEN + 1)
    );
    let errors = errors(&text, dir.path());
    assert_eq!(
        errors,
        [format!(
            "4:9: `args`: {} bytes is too long: at most {} bytes are allowed",
            limits::MAX_STRING_LEN + 1,
            limits::MAX_STRING_LEN
        )]
    );
}

/// The issue's case: the error of the second entry is on the second entry,
/// although its host path is a suffix of the first's.
#[test]
fn each_mapped_dir_error_is_on_its_own_entry() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 1\nmapped_dirs = [\n  \"data:/x\",\n  \"a:/y\",\n]\n";
    assert_eq!(
        errors(text, dir.path()),
        [format!(
            "5:3: `mapped_dirs`: host path does not exist: {}",
            dir.path().join("a").display()
        )]
    );
    let text = "root = \"rootfs\"\nram = 1\nmapped_dirs = [\"a:/x\", \"data:/y\", \"data:rel\"]\n";
    let errs = errors(text, dir.path());
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("3:16: `mapped_dirs`: host path does not exist"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("3:35: `mapped_dirs`: guest path `rel` is not absolute"),
        "{errs:?}"
    );
}

/// Entries that did not parse are reported; the rules still run over the
/// ones that did, located at their own elements.
#[test]
fn duplicate_and_overlap_checks_run_over_the_entries_that_parsed() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 1\nlocal_only = false\nport_map = [\"x\", \"80:80\", \"81:80\"]\nmapped_dirs = [\"data:/a\", \":::\", \"data:/a/b\"]\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "4:13: `port_map`: invalid port pair \"x\": \"x\" is not a port number from 1 to 65535",
            "4:27: `port_map`: guest port 80 is mapped twice: each guest port may be mapped once (libkrun refuses two host ports for one guest port)",
            "5:27: `mapped_dirs`: invalid path pair \":::\": expected `host:guest` with one `:`; paths may not contain `:`",
            "5:34: `mapped_dirs`: guest path `/a/b` overlaps `/a`: two mapped directories cannot share or nest mount points",
        ]
    );
}

#[test]
fn rules_across_keys_point_at_the_entry_and_name_the_fix() {
    let dir = rootfs();
    let text =
        "root = \"rootfs\"\nram = 1\nport_map = [\"8080:80\"]\nip = \"10.0.0.2\"\nvcpus = 0\n";
    let errs = errors(text, dir.path());
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        errs[0],
        "3:13: `port_map`: port mapping 8080:80 needs networking, which is off: neither `net` nor TSI is on to publish the guest port; set `net` to true (each host port then listens on the host's 127.0.0.1), or set `local_only` to false for TSI (which also lets the guest connect to any address the host can reach), or remove the port mappings"
    );
    assert!(
        errs[1].starts_with("4:6: `ip`: the guest's IPv4 address cannot be set"),
        "{errs:?}"
    );
    assert_eq!(errs[2], "5:9: `vcpus`: vcpus is 0: at least 1 is required");
}

#[test]
fn a_duplicate_key_is_named() {
    let dir = rootfs();
    let errs = errors("root = \"rootfs\"\nram = 1\nram = 2\n", dir.path());
    assert_eq!(
        errs,
        ["3:1: duplicate key `ram`: each key may be given once; remove one of them"]
    );
}

#[test]
fn nesting_beyond_the_limit_is_reported_where_it_happens() {
    let dir = rootfs();
    let text = format!(
        "root = \"rootfs\"\nram = 1\nargs = {}{}\n",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(
        errors(&text, dir.path()),
        [
            "3:9: `args`: expected a string, found array",
            "3:88: cannot recurse further; max recursion depth met"
        ]
    );
    // A dotted key too deep: the parser gives no place, so the key's line.
    let text = format!(
        "root = \"rootfs\"\nram = 1\n{} = 1\n",
        vec!["a"; 100].join(".")
    );
    assert_eq!(errors(&text, dir.path()), ["3:1: recursion limit"]);
}

#[test]
fn net_and_allow_parse_into_the_config() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 64\nnet = true\nallow = [\"127.0.0.1:8080\", \"PyPI.org:443\", \"10.1.0.0/16:22\"]\nport_map = [\"8080:80\"]\n";
    let config = parse_config(text, dir.path()).unwrap();
    assert!(config.net && config.local_only);
    let allow: Vec<String> = config.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["127.0.0.1:8080", "pypi.org:443", "10.1.0.0/16:22"]);
    assert_eq!(config.port_map, ["8080:80".parse::<PortPair>().unwrap()]);
}

#[test]
fn a_bad_allow_entry_is_located_at_its_element() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 64\nnet = true\nallow = [\"pypi.org:443\", \"example.com\", \"[::1]:80\", 443]\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "4:26: `allow`: invalid allow-list entry \"example.com\": it names no port; expected `HOST:PORT`: each entry allows one TCP port (list a host once per port)",
            "4:41: `allow`: invalid allow-list entry \"[::1]:80\": IPv6 is not supported: the guest network is IPv4 only",
            "4:53: `allow`: expected a string, found integer",
        ]
    );
}

#[test]
fn the_rules_of_net_and_allow_point_at_the_value_or_element() {
    let dir = rootfs();
    // Without `net`: at the first entry. A repeat: at the repeat.
    let text =
        "root = \"rootfs\"\nram = 64\nallow = [\"pypi.org:443\", \"x.org:1\", \"pypi.org.:443\"]\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "3:10: `allow`: allow-list entry pypi.org:443 needs `net`, which is off: without it the guest has no network interface, and the allow-list opens nothing; set `net` to true",
            "3:37: `allow`: allow-list entry pypi.org:443 is listed twice: each entry may be listed once",
        ]
    );
    // `net` with TSI: at `net`'s value.
    let text = "root = \"rootfs\"\nram = 64\nlocal_only = false\nnet = true\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "4:7: `net`: `net` and TSI exclude each other: TSI lets the guest connect to any address the host can reach, around `net`'s allow-list; leave `local_only` true (no TSI)"
        ]
    );
    // Too many entries: at the list.
    let list: Vec<String> = (1..=limits::MAX_ALLOW_ENTRIES + 1)
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let text = format!(
        "root = \"rootfs\"\nram = 64\nnet = true\nallow = [{}]\n",
        list.join(", ")
    );
    let errs = errors(&text, dir.path());
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("4:9: `allow`: too many allow: 65 given, at most 64 allowed"),
        "{errs:?}"
    );
}

/// A `net` that is not a boolean is one problem: the allow-list and the
/// port map do not also say that networking is off.
#[test]
fn a_net_of_the_wrong_type_is_not_also_networking_off() {
    let dir = rootfs();
    let text = "root = \"rootfs\"\nram = 64\nnet = \"yes\"\nallow = [\"pypi.org:443\"]\nport_map = [\"8080:80\"]\n";
    assert_eq!(
        errors(text, dir.path()),
        ["3:7: `net`: expected true or false, found string"]
    );
    let text = "root = \"rootfs\"\nram = 64\nlocal_only = 0\nport_map = [\"8080:80\"]\n";
    assert_eq!(
        errors(text, dir.path()),
        ["3:14: `local_only`: expected true or false, found integer"]
    );
}
