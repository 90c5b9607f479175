use std::path::Path;

use super::*;

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
ip = "10.0.0.2"
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
    expected.assigned_ip = Some(Ipv4Addr::new(10, 0, 0, 2));
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
            "3:9: `vcpus`: 300 is out of range: expected 0 to 255",
            "4:13: `port_map`: invalid port pair \"8080:80:90\": expected `host:guest` with one `:`",
            "4:27: `port_map`: expected a string, found integer",
            "5:12: `rlimits`: invalid resource limit \"RLIMIT_NOFILE=2:1\": the soft limit 2 exceeds the hard limit 1",
            "6:6: `ip`: \"10.0.0\" is not an IPv4 address such as 10.0.0.2",
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
    let text = "root = \"rootfs\"\nram = 0\nmapped_dirs = [\"data:/app\", \"data:/app/sub\"]\nport_map = [\"80:80\", \"80:81\"]\nargs = [\"a\"]\n";
    assert_eq!(
        errors(text, dir.path()),
        [
            "2:7: `ram`: amount of RAM is zero: at least 1 MiB is required",
            "3:29: `mapped_dirs`: conflicting guest paths: '/app' and '/app/sub' overlap",
            "4:22: `port_map`: host port 80 is mapped twice",
            "5:8: `args`: arguments [\"a\"] were given without an exec path to run them",
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
        ["2:7: `ram`: -5 is out of range: expected 0 to 4294967295"]
    );
}

#[test]
fn line_column_counts_chars() {
    assert_eq!(line_column("ab\ncé\nx", 0), (1, 1));
    assert_eq!(line_column("ab\ncé\nx", 3), (2, 1));
    assert_eq!(line_column("ab\ncé\nx", 7), (3, 1));
    assert_eq!(line_column("ab", 99), (1, 3));
}
