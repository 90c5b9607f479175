//! The `Hello` exchange against a stand-in for libkrun's socket.

use std::os::unix::net::{UnixListener, UnixStream};

use super::greet;

/// A connection whose far end (libkrun, nothing listening in the guest yet)
/// has already been accepted and closed.
fn closed_by_peer() -> UnixStream {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let conn = UnixStream::connect(&socket).unwrap();
    drop(listener.accept().unwrap());
    conn
}

#[test]
fn a_connection_closed_before_our_hello_is_written_means_not_ready() {
    // The write of `Hello` meets a broken pipe: retry, not fail.
    assert!(matches!(greet(closed_by_peer()), Ok(None)));
}

#[test]
fn a_connection_closed_after_our_hello_means_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let conn = UnixStream::connect(&socket).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut far, _) = listener.accept().unwrap();
        // Reads the Hello, then closes without answering.
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut far, &mut byte).unwrap();
    });
    assert!(matches!(greet(conn), Ok(None)));
    peer.join().unwrap();
}
