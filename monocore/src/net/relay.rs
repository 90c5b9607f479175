//! The relays between passt's namespace and the host.
//!
//! - Egress: passt's connection for the guest arrives at a listener in
//!   the namespace ([`super::namespace`]); the address it was made to is
//!   the listener's side of it. If the policy allows that address and
//!   port, a thread of this process (in the host's namespace) connects to
//!   the same address (the host's 127.0.0.1 for the namespace's) and copies
//!   bytes both ways; if not, the connection is reset.
//! - Publish: a listener on the host's 127.0.0.1:HOST; each connection is
//!   carried by a thread that enters passt's namespace and connects to the
//!   port passt forwards to the guest's port.
//!
//! At most [`MAX_RELAYS`] connections are carried at once; more are reset,
//! so a guest cannot make this process start threads without bound.

use std::{
    io,
    net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::{AsFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::policy::Policy;

/// The most connections carried at once, both directions together.
pub(crate) const MAX_RELAYS: usize = 256;
/// How long a connection to an allowed destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed accept (out of fds, say), so that a listener
/// that keeps failing does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Counts the connections being carried.
#[derive(Default)]
pub(crate) struct Slots(AtomicUsize);

struct Slot(Arc<Slots>);

impl Slots {
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_RELAYS).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ends `stream` with a reset instead of a close.
fn reset(stream: TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
    drop(stream);
}

/// Copies both ways until both directions end.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let other = std::thread::Builder::new()
        .name("monocore-relay".into())
        .spawn(move || copy_half(a2, b2));
    copy_half(b, a);
    if let Ok(other) = other {
        let _ = other.join();
    }
}

/// Copies `from` into `to`, then ends `to`'s sending side.
fn copy_half(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Where the host connects for a connection that reached the namespace at
/// `addr:port`: the same address (the namespace's loopback is the host's).
fn destination(local: SocketAddr) -> Option<SocketAddrV4> {
    match local {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(_) => None,
    }
}

/// Serves one egress listener until the process ends.
pub(crate) fn serve_egress(listener: TcpListener, policy: Arc<Policy>, slots: Arc<Slots>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            std::thread::sleep(ACCEPT_BACKOFF);
            continue;
        };
        let target = stream.local_addr().ok().and_then(destination);
        let allowed = target.filter(|t| policy.allows(*t.ip(), t.port()));
        let (Some(target), Some(slot)) = (allowed, slots.take()) else {
            reset(stream);
            continue;
        };
        let _ = std::thread::Builder::new()
            .name("monocore-egress".into())
            .spawn(move || {
                let _slot = slot;
                match TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT) {
                    Ok(host) => splice(stream, host),
                    Err(_) => reset(stream),
                }
            });
    }
}

/// Serves one published port until the process ends: connections to the
/// host's `listener` go to `127.0.0.1:inner` in the namespace `netns`.
pub(crate) fn serve_publish(
    listener: TcpListener,
    netns: Arc<OwnedFd>,
    inner: u16,
    slots: Arc<Slots>,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            std::thread::sleep(ACCEPT_BACKOFF);
            continue;
        };
        let Some(slot) = slots.take() else {
            reset(stream);
            continue;
        };
        let netns = Arc::clone(&netns);
        let _ = std::thread::Builder::new()
            .name("monocore-publish".into())
            .spawn(move || {
                let _slot = slot;
                match connect_in(&netns, SocketAddrV4::new(Ipv4Addr::LOCALHOST, inner)) {
                    Ok(guest) => splice(stream, guest),
                    Err(_) => reset(stream),
                }
            });
    }
}

/// Moves this thread into `netns` and connects to `target` there.
fn connect_in(netns: &OwnedFd, target: SocketAddrV4) -> io::Result<TcpStream> {
    rustix::thread::move_into_link_name_space(
        netns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT)
}
