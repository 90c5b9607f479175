//! The control protocol: every message round-trips, every truncation and
//! lie about a length is an error, the fuzz seeds are of this version.

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

proptest! {
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
