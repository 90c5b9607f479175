//! File sessions against a hostile stand-in for the guest agent: one that
//! floods a read, one that says nothing, one that sends a byte at a time,
//! one that lists names that are not names, and one whose tree tries to
//! lead a copy out of its destination.

use std::{
    io::Write,
    os::unix::net::UnixStream,
    path::Path,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use monocore_agent::{
    control::{AgentMessage, Entry, EntryKind, HostMessage, MAX_DATA},
    report::{Report, Step},
};

use super::{session::Session, tree};
use crate::{MonocoreError, error::GuestFileError};

/// A session whose agent is `agent`, run on the far end of a socket pair,
/// with `timeout` for the whole session.
fn against(
    timeout: Duration,
    agent: impl FnOnce(UnixStream) + Send + 'static,
) -> (Session, JoinHandle<()>) {
    let (near, far) = UnixStream::pair().unwrap();
    let agent = std::thread::spawn(move || agent(far));
    let session = Session::new(near, None, Instant::now() + timeout, timeout);
    (session, agent)
}

fn request(conn: &mut UnixStream) -> HostMessage {
    HostMessage::read(conn).unwrap().unwrap()
}

fn file_error(result: Result<impl std::fmt::Debug, MonocoreError>) -> GuestFileError {
    match result {
        Err(MonocoreError::GuestFile(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_guest_that_floods_a_read_is_cut_off_at_the_limit() {
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        let HostMessage::ReadFile { max, .. } = request(&mut conn) else {
            panic!("not a read")
        };
        assert_eq!(max, 1 << 20);
        // Endless, whatever the host asked for.
        let frame = AgentMessage::Data(vec![b'y'; MAX_DATA]).encode().unwrap();
        while conn.write_all(&frame).is_ok() {}
    });
    let mut sink = Vec::new();
    let started = Instant::now();
    let err = file_error(session.read(b"/dev/zero", 1 << 20, 1 << 20, &mut sink, Path::new("-")));
    assert!(
        matches!(&err, GuestFileError::TooLarge { path, max } if path == "/dev/zero" && *max == 1 << 20),
        "{err:?}"
    );
    assert!(sink.len() <= 1 << 20, "{} bytes kept", sink.len());
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(session);
    agent.join().unwrap();
}

#[test]
fn an_agent_that_says_it_has_more_than_the_limit_is_the_same_error() {
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        request(&mut conn);
        let failed = AgentMessage::Failed(Report::Failed {
            step: Step::Read,
            errno: libc::EFBIG,
            detail: "/big".into(),
        });
        failed.write(&mut conn).unwrap();
    });
    let err = file_error(session.read(b"/big", 10, 10, &mut Vec::new(), Path::new("-")));
    assert!(
        matches!(err, GuestFileError::TooLarge { max: 10, .. }),
        "{err:?}"
    );
    agent.join().unwrap();
}

#[test]
fn a_silent_or_dripping_guest_is_a_timeout_at_the_deadline() {
    let timeout = Duration::from_millis(400);
    let (mut session, agent) = against(timeout, |mut conn| {
        request(&mut conn);
        std::thread::sleep(Duration::from_secs(2));
    });
    let started = Instant::now();
    let err = file_error(session.read(b"/x", 100, 100, &mut Vec::new(), Path::new("-")));
    assert!(
        matches!(&err, GuestFileError::TimedOut { path, .. } if path == "/x"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(session);
    agent.join().unwrap();

    // A byte at a time, each within any one read's timeout: the whole
    // read still ends at the deadline.
    let (mut session, agent) = against(timeout, |mut conn| {
        request(&mut conn);
        let frame = AgentMessage::Data(vec![0; 1000]).encode().unwrap();
        for byte in frame {
            if conn.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let started = Instant::now();
    let err = file_error(session.read(b"/x", 5000, 5000, &mut Vec::new(), Path::new("-")));
    assert!(matches!(err, GuestFileError::TimedOut { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(session);
    agent.join().unwrap();
}

fn entry(name: &[u8], kind: EntryKind, link: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        kind,
        mode: 0o755,
        size: 0,
        link: link.to_vec(),
    }
}

#[test]
fn names_that_are_not_one_component_are_refused() {
    for bad in [&b".."[..], b"a/b", b"."] {
        let (mut session, agent) = against(Duration::from_secs(30), move |mut conn| {
            request(&mut conn);
            let listing = vec![
                entry(b"", EntryKind::Dir, b""),
                entry(bad, EntryKind::File, b""),
            ];
            AgentMessage::Entries(listing).write(&mut conn).unwrap();
            AgentMessage::Done.write(&mut conn).unwrap();
        });
        let err = file_error(session.stat(b"/d", true, 100));
        assert!(
            matches!(err, GuestFileError::BadEntryName { .. }),
            "{err:?}"
        );
        agent.join().unwrap();
    }
    // A listing without the path's own entry first.
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        request(&mut conn);
        AgentMessage::Entries(vec![entry(b"a", EntryKind::File, b"")])
            .write(&mut conn)
            .unwrap();
        AgentMessage::Done.write(&mut conn).unwrap();
    });
    assert!(session.stat(b"/d", true, 100).is_err());
    agent.join().unwrap();
}

#[test]
fn a_listing_past_the_entry_limit_is_cut_off() {
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        request(&mut conn);
        let mut listing = vec![entry(b"", EntryKind::Dir, b"")];
        listing.extend((0..100).map(|i| entry(format!("f{i}").as_bytes(), EntryKind::File, b"")));
        while AgentMessage::Entries(listing.clone())
            .write(&mut conn)
            .is_ok()
        {}
    });
    let err = file_error(session.stat(b"/d", true, 1000));
    assert!(
        matches!(err, GuestFileError::TooManyEntries { max: 1000, .. }),
        "{err:?}"
    );
    drop(session);
    agent.join().unwrap();
}

#[test]
fn values_the_agent_would_refuse_are_not_sent() {
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        // Nothing arrives before the host closes.
        assert!(HostMessage::read(&mut conn).unwrap().is_none());
    });
    let err = file_error(session.write(b"relative", 0o644, &mut &b""[..], Path::new("-")));
    assert!(matches!(err, GuestFileError::Invalid { .. }), "{err:?}");
    let err = file_error(session.write(b"/x", 0o10_644, &mut &b""[..], Path::new("-")));
    assert!(
        matches!(err, GuestFileError::InvalidMode { mode: 0o10_644, .. }),
        "{err:?}"
    );
    let err =
        file_error(session.make(b"/x\0y", monocore_agent::control::Make::Dir { mode: 0o755 }));
    assert!(matches!(err, GuestFileError::Invalid { .. }), "{err:?}");
    drop(session);
    agent.join().unwrap();
}

#[test]
fn an_agent_failure_names_the_path_and_the_step() {
    let (mut session, agent) = against(Duration::from_secs(30), |mut conn| {
        assert!(matches!(request(&mut conn), HostMessage::WriteFile { .. }));
        while !matches!(request(&mut conn), HostMessage::Data(d) if d.is_empty()) {}
        let failed = AgentMessage::Failed(Report::Failed {
            step: Step::Resolve,
            errno: libc::ENOENT,
            detail: "whatever the guest says".into(),
        });
        failed.write(&mut conn).unwrap();
    });
    let bytes = vec![1u8; 200_000];
    let err =
        file_error(session.write(b"/no/such/f", 0o644, &mut bytes.as_slice(), Path::new("-")));
    assert_eq!(
        err.to_string(),
        "the guest cannot find the directory of \"/no/such/f\": No such file or directory"
    );
    agent.join().unwrap();
}

#[test]
fn a_hostile_tree_never_leads_a_copy_out_of_its_destination() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    let canary_path = canary.clone();
    let (mut session, agent) = against(Duration::from_secs(30), move |mut conn| {
        // The tree: `x -> <canary>`, then a directory also named `x`.
        request(&mut conn);
        let link = canary_path.as_os_str().as_encoded_bytes().to_vec();
        let listing = vec![
            entry(b"", EntryKind::Dir, b""),
            entry(b"x", EntryKind::Symlink, &link),
            entry(b"x", EntryKind::Dir, b""),
        ];
        AgentMessage::Entries(listing).write(&mut conn).unwrap();
        AgentMessage::Done.write(&mut conn).unwrap();
        // Asked to list `x`: a file in it.
        if let Some(HostMessage::Stat { .. }) = HostMessage::read(&mut conn).unwrap() {
            let listing = vec![
                entry(b"", EntryKind::Dir, b""),
                entry(b"planted", EntryKind::File, b""),
            ];
            let _ = AgentMessage::Entries(listing).write(&mut conn);
            let _ = AgentMessage::Done.write(&mut conn);
        }
    });
    let dst = dir.path().join("out");
    let result = tree::copy_out(&mut session, b"/tree", &dst, 1 << 20, 100);
    assert!(
        matches!(
            result,
            Err(MonocoreError::GuestFile(GuestFileError::Host { .. }))
        ),
        "{result:?}"
    );
    drop(session);
    agent.join().unwrap();
    assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 0);
    assert_eq!(std::fs::read_link(dst.join("x")).unwrap(), canary);
}
