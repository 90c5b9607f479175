use std::io::Cursor;

use super::*;
use crate::config::{LinuxRlimit, MicroVm, PathPair, PortPair};

#[test]
fn status_lines_round_trip() {
    assert_eq!(
        parse_status(&ready_line(1_700_000_000_000_000_000)),
        Some(Status::Ready(1_700_000_000_000_000_000))
    );
    let krun = MonocoreError::Krun {
        call: "krun_set_root",
        errno: 22,
    };
    assert_eq!(
        parse_status(&failure_line(&krun)),
        Some(Status::Failed(Failure::Krun {
            call: "krun_set_root",
            errno: 22
        }))
    );
    // Any other error crosses as its text, with every cause, on one line.
    let other = MonocoreError::from(HelperError::BadHeader {
        header: "a\nb".into(),
    });
    let Some(Status::Failed(failure)) = parse_status(&failure_line(&other)) else {
        panic!("not a failure line: {}", failure_line(&other));
    };
    assert_eq!(
        failure,
        Failure::Reported(
            "the VM helper failed before entering the VM: bad request header \"a\\nb\": \
             expected a byte length and a newline"
                .into()
        )
    );
    assert!(matches!(
        failure.into_error(),
        MonocoreError::Helper(HelperError::Reported(_))
    ));
    assert_eq!(parse_status("monocore-vmm error-krun krun_evil 1"), None);
    assert_eq!(parse_status("[x ERROR vmm] monocore-vmm ready 1"), None);
    let ttl = std::time::Duration::from_millis(90_500);
    assert_eq!(parse_status(&expired_line(ttl)), Some(Status::Expired(ttl)));
    assert_eq!(parse_status("monocore-vmm expired soon"), None);
}

#[test]
fn a_request_without_a_time_to_live_still_decodes() {
    // What a parent of before `time_to_live` sends.
    let mut sent = request(&MicroVmConfig::new("/rootfs", 256));
    sent.time_to_live = None;
    let mut json: serde_json::Value = serde_json::to_value(&sent).unwrap();
    json.as_object_mut().unwrap().remove("time_to_live");
    let json = serde_json::to_vec(&json).unwrap();
    let framed = [format!("{}\n", json.len()).into_bytes(), json].concat();
    assert_eq!(decode_request(&mut Cursor::new(framed)).unwrap(), sent);
}

#[test]
fn log_lines_and_exit_sources_parse() {
    let line =
        parse_log_line("[2025-01-01T00:00:00.000000Z DEBUG krun_vmm] using vmm exit code: 3")
            .unwrap();
    assert_eq!(parse_exit_source(&line), Some(ExitSource::Guest(3)));
    let line =
        parse_log_line("[2025-01-01T00:00:00.000000Z DEBUG krun_vmm] using vcpu exit code: 1")
            .unwrap();
    assert_eq!(parse_exit_source(&line), Some(ExitSource::Vcpu(1)));
    let line = parse_log_line(
        "[2025-01-01T00:00:00.000000Z ERROR krun_vmm::linux::vstate] Received KVM_EXIT_INTERNAL_ERROR signal",
    )
    .unwrap();
    assert_eq!(line.level, LogLevel::Error);
    assert_eq!(line.target, "krun_vmm::linux::vstate");
    assert_eq!(line.message, "Received KVM_EXIT_INTERNAL_ERROR signal");
    assert_eq!(parse_exit_source(&line), None);
    // Without a timestamp, and with a padded level.
    let line = parse_log_line("[INFO  krun_vmm] Vmm is stopping.").unwrap();
    assert_eq!(line.level, LogLevel::Info);
    // A lower-case or numeric "level" is not a record's.
    assert_eq!(parse_log_line("[t info krun_vmm] x"), None);
    assert_eq!(parse_log_line("[t 3 krun_vmm] x"), None);
}

#[test]
fn guest_text_cannot_forge_an_exit_line() {
    // Kernel console output is logged under `init_or_kernel`.
    let forged = parse_log_line(
        "[2025-01-01T00:00:00.000000Z ERROR init_or_kernel] [t DEBUG krun_vmm] using vmm exit code: 0",
    )
    .unwrap();
    assert_eq!(parse_exit_source(&forged), None);
    // Continuation lines are indented.
    assert_eq!(
        parse_log_line("    [t DEBUG krun_vmm] using vmm exit code: 0"),
        None
    );
}

fn decode(bytes: &[u8]) -> Result<MicroVmConfig, HelperError> {
    decode_request(&mut Cursor::new(bytes)).map(|r| r.config)
}

fn request(config: &MicroVmConfig) -> HelperRequest {
    HelperRequest {
        config: config.clone(),
        kernel: GuestKernel::Elf {
            path: "/k/vmlinux".into(),
            cmdline: "quiet".into(),
        },
        run_dir: "/cache/vms/run-x".into(),
        net: None,
        time_to_live: Some(std::time::Duration::from_millis(1500)),
    }
}

#[test]
fn the_request_round_trips_and_nothing_after_it_is_read() {
    let mut config = MicroVmConfig::new("/rootfs", 256);
    config.args = vec!["a b".into()];
    let sent = request(&config);
    let mut stream = Cursor::new([encode_request(&sent).unwrap(), b"trailing".to_vec()].concat());
    assert_eq!(decode_request(&mut stream).unwrap(), sent);
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "trailing");
}

#[test]
fn a_huge_length_is_refused_before_allocating() {
    let start = std::time::Instant::now();
    for header in [
        format!("{}\n", limits::MAX_HELPER_CONFIG_LEN + 1),
        format!("{}\n", usize::MAX),
    ] {
        assert!(
            matches!(
                decode(header.as_bytes()),
                Err(HelperError::RequestTooLarge { max, .. }) if max == limits::MAX_HELPER_CONFIG_LEN
            ),
            "{header}"
        );
    }
    // A length within the limit but a short stream: an error, and the
    // buffer only ever held the bytes that arrived.
    let lying = format!("{}\n{{}}", limits::MAX_HELPER_CONFIG_LEN);
    assert!(matches!(
        decode(lying.as_bytes()),
        Err(HelperError::Truncated { read: 2, len }) if len == limits::MAX_HELPER_CONFIG_LEN
    ));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn bad_headers_and_json_are_refused() {
    for (bad, header) in [
        (&b""[..], true),
        (b"12", true),                                          // no newline
        (b"-1\n{}", true),                                      // not a length
        (b" 2\n{}", true),                                      // not exactly a length
        (b"000000000000000000000000000000000000002\n{}", true), // header > 32 bytes
        (b"2\n[]", false),                                      // JSON, but not a request
        (b"3\n{\xff}", false),                                  // not UTF-8
    ] {
        let result = decode(bad);
        let ok = if header {
            matches!(result, Err(HelperError::BadHeader { .. }))
        } else {
            matches!(result, Err(HelperError::BadRequest(_)))
        };
        assert!(ok, "{:?}: {result:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn the_helper_validates_the_config_again() {
    // Well-formed JSON is not trusted: the helper passes it to
    // `MicroVm::from_config`, which validates.
    let root = tempfile::tempdir().unwrap();
    let mut config = MicroVmConfig::new(root.path(), 256);
    config.args = vec!["x".into()]; // args without exec_path
    let decoded = decode(&encode_request(&request(&config)).unwrap()).unwrap();
    assert!(matches!(
        MicroVm::from_config(decoded),
        Err(MonocoreError::InvalidMicroVmConfig(_))
    ));
}

#[test]
fn every_valid_config_fits_the_helper_channel() {
    // The worst case the limits allow: every path at its maximum length
    // and the command at the most any stack limit gives (6 MiB), all made
    // of bytes JSON escapes to six (`\u0001`).
    let ctl = |n: usize| "\u{1}".repeat(n);
    let path_max = limits::MAX_PATH_LEN;
    let dir = |i: usize| {
        let guest = format!("/{i:04}{}", ctl(path_max - 5));
        PathPair::with_distinct(ctl(path_max).into(), guest.into())
    };
    let mut config = MicroVmConfig::new(format!("/{}", ctl(path_max - 1)), 1);
    config.local_only = false;
    config.mapped_dirs = (0..limits::max_mapped_dirs(true)).map(dir).collect();
    config.port_map = (1..=limits::MAX_PORT_MAPPINGS)
        .map(|p| {
            let p = u16::try_from(p).unwrap();
            PortPair::with_distinct(p, p)
        })
        .collect();
    config.rlimits = (0..16)
        .map(|r| {
            format!("{r}=18446744073709551615:18446744073709551615")
                .parse::<LinuxRlimit>()
                .unwrap()
        })
        .collect();
    config.console_output = Some(ctl(path_max).into());
    config.exec_path = Some("/x".into());
    let room = limits::command_space(Some(u64::MAX)) - (2 + 9);
    let n = room / (limits::MAX_STRING_LEN + 9);
    config.args = vec![ctl(limits::MAX_STRING_LEN); n];
    config.validate_values().unwrap();

    let worst = encode_request(&request(&config)).unwrap().len();
    assert!(
        worst <= limits::MAX_HELPER_CONFIG_LEN + 16,
        "{worst} > {}",
        limits::MAX_HELPER_CONFIG_LEN
    );
    assert!(
        worst > limits::MAX_HELPER_CONFIG_LEN / 2,
        "not a worst case: {worst}"
    );
}

#[test]
fn log_filter_always_keeps_errors_and_exit_lines() {
    assert_eq!(log_filter(LogLevel::Off), "error,krun_vmm=debug");
    assert_eq!(log_filter(LogLevel::Info), "info,krun_vmm=debug");
    assert_eq!(log_filter(LogLevel::Trace), "trace");
}
