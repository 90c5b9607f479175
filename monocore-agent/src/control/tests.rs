//! The control protocol: every message round-trips, every truncation and
//! lie about a length is an error, the fuzz seeds are of this version.

use std::io;

use proptest::prelude::*;

use super::*;
use crate::report::Step;

fn host_messages() -> Vec<HostMessage> {
    vec![
        HostMessage::Hello { version: VERSION },
        HostMessage::Exec(Box::new(ExecRequest {
            exec: b"/bin/sh".to_vec(),
            args: vec![b"-c".to_vec(), b"echo \"hi\"\n".to_vec()],
            env: vec![b"A=\xff".to_vec()],
            workdir: b"/tmp".to_vec(),
            tty: Some(WinSize { rows: 24, cols: 80 }),
            ..ExecRequest::default()
        })),
        HostMessage::Exec(Box::default()),
        HostMessage::Exec(Box::new(exec::tests::in_a_new_container())),
        HostMessage::Exec(Box::new(ExecRequest {
            place: Place::Join(b"web".to_vec()),
            user: Some(User::default()),
            ..ExecRequest::default()
        })),
        HostMessage::Stdin(b"data\0with nul".to_vec()),
        HostMessage::Stdin(Vec::new()),
        HostMessage::Signal(15),
        HostMessage::Resize(WinSize {
            rows: 50,
            cols: 132,
        }),
        HostMessage::Shutdown,
        HostMessage::Prepare(Box::new(match exec::tests::in_a_new_container().place {
            Place::Create(setup) => setup,
            Place::Vm | Place::Join(_) => ContainerSetup::default(),
        })),
        HostMessage::Discard(b"web".to_vec()),
        HostMessage::Ping(0),
        HostMessage::Ping(u32::MAX),
        HostMessage::Kill { pid: 42 },
    ]
    .into_iter()
    .chain(file_requests())
    .collect()
}

/// A request of each file kind, in the VM and in a container.
fn file_requests() -> Vec<HostMessage> {
    let vm = |path: &[u8]| FileTarget {
        container: None,
        path: path.to_vec(),
    };
    let web = |path: &[u8]| FileTarget {
        container: Some(b"web".to_vec()),
        path: path.to_vec(),
    };
    vec![
        HostMessage::WriteFile {
            target: vm(b"/tmp/out"),
            mode: 0o4755,
        },
        HostMessage::Data(b"bytes\0\xff".to_vec()),
        HostMessage::Data(Vec::new()),
        HostMessage::ReadFile {
            target: web(b"/etc/hosts"),
            max: 64 << 20,
        },
        HostMessage::Make {
            target: vm(b"/srv/a"),
            make: Make::Dir { mode: 0o750 },
        },
        HostMessage::Make {
            target: web(b"/srv/link"),
            make: Make::Symlink {
                target: b"../../etc".to_vec(),
            },
        },
        HostMessage::Stat {
            target: vm(b"/"),
            list: true,
        },
    ]
}

/// A listing: the directory itself, then a file, a directory, a symlink
/// and a FIFO in it.
fn listing() -> Vec<Entry> {
    let entry = |name: &[u8], kind, mode, size, link: &[u8]| Entry {
        name: name.to_vec(),
        kind,
        mode,
        size,
        link: link.to_vec(),
    };
    vec![
        entry(b"", EntryKind::Dir, 0o755, 4096, b""),
        entry(b"notes.txt", EntryKind::File, 0o644, 10 << 20, b""),
        entry(b"sub", EntryKind::Dir, 0o1777, 0, b""),
        entry(b"out", EntryKind::Symlink, 0o777, 1, b"/"),
        entry(b"fifo", EntryKind::Other, 0o600, 0, b""),
    ]
}

fn agent_messages() -> Vec<AgentMessage> {
    vec![
        AgentMessage::Hello { version: VERSION },
        AgentMessage::Started { pid: 42 },
        AgentMessage::Stdout(b"out\0".to_vec()),
        AgentMessage::Stderr(Vec::new()),
        AgentMessage::Exited(ExitKind::Code(3)),
        AgentMessage::Exited(ExitKind::Signal(9)),
        AgentMessage::Failed(Report::Failed {
            step: Step::Exec,
            errno: 2,
            detail: "/no/such".into(),
        }),
        AgentMessage::Done,
        AgentMessage::Pong(7),
        AgentMessage::Data(b"file\0bytes".to_vec()),
        AgentMessage::Data(Vec::new()),
        AgentMessage::Entries(listing()),
        AgentMessage::Entries(Vec::new()),
    ]
}

#[test]
fn every_message_round_trips_through_a_stream() {
    let mut stream = Vec::new();
    for m in host_messages() {
        m.write(&mut stream).unwrap();
    }
    let mut reader = &stream[..];
    for m in host_messages() {
        assert_eq!(HostMessage::read(&mut reader).unwrap(), Some(m));
    }
    assert!(HostMessage::read(&mut reader).unwrap().is_none());

    let mut stream = Vec::new();
    for m in agent_messages() {
        m.write(&mut stream).unwrap();
    }
    let mut reader = &stream[..];
    for m in agent_messages() {
        assert_eq!(AgentMessage::read(&mut reader).unwrap(), Some(m));
    }
    assert!(AgentMessage::read(&mut reader).unwrap().is_none());
}

#[test]
fn a_lying_length_is_refused_before_reading_the_body() {
    // 1 GiB announced for a Stdout frame, 3 bytes given.
    let mut frame = (1u32 << 30).to_le_bytes().to_vec();
    frame.extend_from_slice(&[0x83, 1, 2, 3]);
    assert!(matches!(
        AgentMessage::read(&mut &frame[..]),
        Err(ControlError::FrameTooLong { len }) if len == 1 << 30
    ));
    // Within the data limit but past the data actually sent.
    let mut frame = 100u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0x83, 1, 2, 3]);
    assert!(matches!(
        AgentMessage::read(&mut &frame[..]),
        Err(ControlError::Truncated)
    ));
    // Only an Exec frame may be large.
    let mut frame = u32::try_from(MAX_DATA_FRAME_LEN + 1)
        .unwrap()
        .to_le_bytes()
        .to_vec();
    frame.push(0x03);
    assert!(matches!(
        HostMessage::read(&mut &frame[..]),
        Err(ControlError::FrameTooLong { .. })
    ));
}

#[test]
fn ping_pong_and_kill_are_their_kind_and_a_u32() {
    // Frames of version 4, byte for byte: length, kind, little-endian body.
    assert_eq!(
        HostMessage::Ping(0x0102_0304).encode().unwrap(),
        [5, 0, 0, 0, 0x0E, 4, 3, 2, 1]
    );
    assert_eq!(
        HostMessage::Kill { pid: 42 }.encode().unwrap(),
        [5, 0, 0, 0, 0x0F, 42, 0, 0, 0]
    );
    assert_eq!(
        AgentMessage::Pong(7).encode().unwrap(),
        [5, 0, 0, 0, 0x8E, 7, 0, 0, 0]
    );
    // A short body, a long one, and the other side's kind are errors.
    assert!(matches!(
        HostMessage::decode(0x0F, &[1, 2]),
        Err(ControlError::Body(_))
    ));
    assert!(matches!(
        AgentMessage::decode(0x8E, &[1, 0, 0, 0, 0]),
        Err(ControlError::TrailingBytes)
    ));
    assert!(matches!(
        AgentMessage::decode(0x0E, &[1, 0, 0, 0]),
        Err(ControlError::UnknownKind { kind: 0x0E })
    ));
    assert!(matches!(
        HostMessage::decode(0x8E, &[1, 0, 0, 0]),
        Err(ControlError::UnknownKind { kind: 0x8E })
    ));
}

#[test]
fn unknown_kinds_empty_frames_and_trailing_bytes_are_errors() {
    assert!(matches!(
        AgentMessage::decode(0x01, &[]),
        Err(ControlError::UnknownKind { kind: 0x01 })
    ));
    assert!(matches!(
        HostMessage::read(&mut &0u32.to_le_bytes()[..]),
        Err(ControlError::UnknownKind { kind: 0 })
    ));
    assert!(matches!(
        HostMessage::decode(0x06, &[0]),
        Err(ControlError::TrailingBytes)
    ));
    // A Failed frame must hold a failure report, not `ready`.
    let ready = AgentMessage::decode(0x86, &[6, 0, 0, 0, b'r', b'e', b'a', b'd', b'y', b'\n']);
    assert!(ready.is_err());
}

#[test]
fn a_malformed_body_names_the_wire_error_as_its_source() {
    use std::error::Error as _;
    let err = HostMessage::decode(EXEC, &[1, 0]).unwrap_err();
    assert_eq!(err.to_string(), "malformed control frame");
    let source = err.source().map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("the bytes end inside `exec`"));
    let io = ControlError::from(io::Error::from(io::ErrorKind::BrokenPipe));
    assert_eq!(
        io.to_string(),
        "reading or writing the control channel failed"
    );
    assert!(io.source().is_some());
}

#[test]
fn file_messages_are_bounded_and_refuse_unknown_tags() {
    // A Make of kind 2.
    let mut body = vec![0u8];
    body.extend_from_slice(&1u32.to_le_bytes());
    body.push(b'/');
    body.push(2);
    assert!(matches!(
        HostMessage::decode(0x0C, &body),
        Err(ControlError::Body(WireError::BadTag {
            field: "make",
            tag: 2
        }))
    ));
    // An entry of kind 4.
    let mut frame = AgentMessage::Entries(listing()[..1].to_vec())
        .encode()
        .unwrap();
    let kind_at = 4 + 1 + 4 + 4; // length, kind, count, empty name
    frame[kind_at] = 4;
    assert!(matches!(
        AgentMessage::read(&mut &frame[..]),
        Err(ControlError::Body(WireError::BadTag {
            field: "entries.kind",
            tag: 4
        }))
    ));
    // More entries than a frame may carry, refused before allocating.
    let mut body = u32::MAX.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 64]);
    assert!(matches!(
        AgentMessage::decode(0x89, &body),
        Err(ControlError::Body(WireError::TooMany {
            field: "entries",
            max: MAX_ENTRIES,
            ..
        }))
    ));
    let many = vec![listing()[0].clone(); MAX_ENTRIES + 1];
    assert!(AgentMessage::Entries(many).encode().is_err());
    // A data frame is refused past the data limit before its body is read.
    let mut frame = u32::try_from(MAX_DATA_FRAME_LEN + 1)
        .unwrap()
        .to_le_bytes()
        .to_vec();
    frame.push(0x88);
    assert!(matches!(
        AgentMessage::read(&mut &frame[..]),
        Err(ControlError::FrameTooLong { .. })
    ));
    // Every truncation of a file request is an error.
    for request in file_requests() {
        let frame = request.encode().unwrap();
        let (kind, body) = (frame[4], &frame[5..]);
        for cut in 0..body.len() {
            assert!(
                HostMessage::decode(kind, &body[..cut]).is_err(),
                "{request:?} at {cut}"
            );
        }
    }
}

#[test]
fn a_data_frame_is_read_whole_from_a_slow_stream() {
    /// Gives at most 7 bytes per read.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let data: Vec<u8> = (0..MAX_DATA).map(|i| (i % 251) as u8).collect();
    let frame = AgentMessage::Data(data.clone()).encode().unwrap();
    let got = AgentMessage::read(&mut Trickle(&frame)).unwrap();
    assert_eq!(got, Some(AgentMessage::Data(data)));
    // Cut anywhere in the body: truncated, not a hang or a short message.
    let cut = &frame[..frame.len() - 1];
    assert!(matches!(
        AgentMessage::read(&mut Trickle(cut)),
        Err(ControlError::Truncated)
    ));
}

/// The fuzz targets' seed sessions (`fuzz/corpus/control_*/session`):
/// the committed files hold these messages, so a protocol change that
/// leaves them stale fails here. `MONOCORE_WRITE_SEEDS=1` rewrites them.
#[test]
fn the_fuzz_seed_sessions_are_of_this_version() {
    let host = [
        HostMessage::Hello { version: VERSION },
        HostMessage::Exec(Box::new(exec::tests::in_a_new_container())),
        HostMessage::Stdin(b"input".to_vec()),
        HostMessage::Stdin(Vec::new()),
        HostMessage::Signal(15),
        HostMessage::Resize(WinSize {
            rows: 50,
            cols: 132,
        }),
        HostMessage::Prepare(Box::new(match exec::tests::in_a_new_container().place {
            Place::Create(setup) => setup,
            Place::Vm | Place::Join(_) => ContainerSetup::default(),
        })),
        HostMessage::Discard(b"web".to_vec()),
        HostMessage::Ping(1),
        HostMessage::Kill { pid: 42 },
        HostMessage::Shutdown,
    ];
    let agent = [
        AgentMessage::Hello { version: VERSION },
        AgentMessage::Started { pid: 42 },
        AgentMessage::Stdout(b"hello\n".to_vec()),
        AgentMessage::Stderr(b"err".to_vec()),
        AgentMessage::Pong(1),
        AgentMessage::Exited(ExitKind::Code(3)),
    ];
    let failed = [
        AgentMessage::Hello { version: VERSION },
        AgentMessage::Failed(Report::Failed {
            step: Step::Bind { index: 1 },
            errno: 30,
            detail: "/etc/hosts".into(),
        }),
    ];
    let prepared = [AgentMessage::Hello { version: VERSION }, AgentMessage::Done];
    let host_files: Vec<HostMessage> = std::iter::once(HostMessage::Hello { version: VERSION })
        .chain(file_requests())
        .collect();
    let agent_files = [
        AgentMessage::Hello { version: VERSION },
        AgentMessage::Done,
        AgentMessage::Data(b"127.0.0.1 localhost\n".to_vec()),
        AgentMessage::Done,
        AgentMessage::Entries(listing()),
        AgentMessage::Done,
        AgentMessage::Failed(Report::Failed {
            step: Step::Read,
            errno: 27,
            detail: "/dev/zero".into(),
        }),
    ];
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let sessions = [
        (
            "control_host/session",
            encode_all(host.iter().map(HostMessage::encode)),
        ),
        (
            "control_agent/session",
            encode_all(agent.iter().map(AgentMessage::encode)),
        ),
        (
            "control_agent/failed",
            encode_all(failed.iter().map(AgentMessage::encode)),
        ),
        (
            "control_agent/prepared",
            encode_all(prepared.iter().map(AgentMessage::encode)),
        ),
        (
            "control_host/files",
            encode_all(host_files.iter().map(HostMessage::encode)),
        ),
        (
            "control_agent/files",
            encode_all(agent_files.iter().map(AgentMessage::encode)),
        ),
    ];
    for (file, bytes) in sessions {
        let path = corpus.join(file);
        if std::env::var_os("MONOCORE_WRITE_SEEDS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} is stale: rerun with MONOCORE_WRITE_SEEDS=1",
            path.display()
        );
    }
}

fn encode_all(frames: impl Iterator<Item = Result<Vec<u8>, ControlError>>) -> Vec<u8> {
    frames.flat_map(Result::unwrap).collect()
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn no_nul(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8.., 0..max)
}

fn file_target() -> impl Strategy<Value = FileTarget> {
    (proptest::option::of(no_nul(20)), no_nul(40))
        .prop_map(|(container, path)| FileTarget { container, path })
}

fn file_message() -> impl Strategy<Value = HostMessage> {
    prop_oneof![
        (file_target(), any::<u32>())
            .prop_map(|(target, mode)| HostMessage::WriteFile { target, mode }),
        bytes(100).prop_map(HostMessage::Data),
        (file_target(), any::<u64>())
            .prop_map(|(target, max)| HostMessage::ReadFile { target, max }),
        (file_target(), any::<u32>()).prop_map(|(target, mode)| HostMessage::Make {
            target,
            make: Make::Dir { mode }
        }),
        (file_target(), no_nul(40)).prop_map(|(target, link)| HostMessage::Make {
            target,
            make: Make::Symlink { target: link }
        }),
        (file_target(), any::<bool>())
            .prop_map(|(target, list)| HostMessage::Stat { target, list }),
    ]
}

fn entries() -> impl Strategy<Value = AgentMessage> {
    let kind = prop_oneof![
        Just(EntryKind::File),
        Just(EntryKind::Dir),
        Just(EntryKind::Symlink),
        Just(EntryKind::Other)
    ];
    let entry = (no_nul(20), kind, any::<u32>(), any::<u64>(), no_nul(20)).prop_map(
        |(name, kind, mode, size, link)| Entry {
            name,
            kind,
            mode,
            size,
            link,
        },
    );
    prop_oneof![
        proptest::collection::vec(entry, 0..20).prop_map(AgentMessage::Entries),
        bytes(100).prop_map(AgentMessage::Data),
    ]
}

proptest! {
    #[test]
    fn file_messages_round_trip_and_every_cut_is_an_error(
        host in file_message(),
        agent in entries(),
    ) {
        let frame = host.encode().unwrap();
        prop_assert_eq!(HostMessage::read(&mut &frame[..]).unwrap(), Some(host));
        for cut in 1..frame.len() {
            prop_assert!(HostMessage::read(&mut &frame[..cut]).is_err());
        }
        let frame = agent.encode().unwrap();
        prop_assert_eq!(AgentMessage::read(&mut &frame[..]).unwrap(), Some(agent));
        for cut in 1..frame.len() {
            prop_assert!(AgentMessage::read(&mut &frame[..cut]).is_err());
        }
    }

    #[test]
    fn any_bytes_read_as_messages_or_fail_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut reader = &bytes[..];
        while let Ok(Some(m)) = AgentMessage::read(&mut reader) {
            // What decodes re-encodes and decodes to the same message.
            let again = m.encode().unwrap();
            prop_assert_eq!(AgentMessage::read(&mut &again[..]).unwrap(), Some(m));
        }
        let mut reader = &bytes[..];
        while let Ok(Some(m)) = HostMessage::read(&mut reader) {
            let again = m.encode().unwrap();
            prop_assert_eq!(HostMessage::read(&mut &again[..]).unwrap(), Some(m));
        }
    }
}
