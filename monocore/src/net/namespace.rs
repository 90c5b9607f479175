//! The network namespace passt runs in: a new one, made by a short-lived
//! thread of this process, with only a loopback interface. It holds the
//! host's loopback range (127.0.0.0/8, as every loopback does), the
//! allow-list's addresses and networks as further loopback addresses, a
//! listening socket per allowed destination (a relay, [`super::relay`],
//! carries each connection on to the host), and the DNS server's socket.
//! Nothing else is reachable from inside: no other interface, no route.
//!
//! The namespace lives as long as one of its sockets, the fd kept for it,
//! or passt does: all of them go when this process ends, however it ends.

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use super::{NetError, policy::Policy};

/// What the namespace holds for the relays and the DNS server.
pub(crate) struct Namespace {
    /// `/proc/thread-self/ns/net` of the thread that made it.
    pub(crate) fd: OwnedFd,
    /// One per [`Policy::listeners`] entry.
    pub(crate) listeners: Vec<TcpListener>,
    /// The DNS server's socket, 127.0.0.1:53.
    pub(crate) dns: UdpSocket,
}

fn step(step: &'static str) -> impl FnOnce(io::Error) -> NetError {
    move |source| NetError::Namespace { step, source }
}

impl Namespace {
    /// Makes the namespace for `policy` (see the module docs).
    pub(crate) fn create(policy: &Policy) -> Result<Self, NetError> {
        let nets = policy.local_nets();
        let listens = policy.listeners();
        std::thread::Builder::new()
            .name("monocore-netns".into())
            .spawn(move || Self::create_here(&nets, &listens))
            .map_err(step("starting its thread"))?
            .join()
            .unwrap_or_else(|_| {
                Err(NetError::Namespace {
                    step: "its thread",
                    source: io::Error::other("the thread panicked"),
                })
            })
    }

    /// Moves this thread into a new namespace and fills it.
    fn create_here(
        nets: &[(Ipv4Addr, u8)],
        listens: &[super::policy::Listen],
    ) -> Result<Self, NetError> {
        // SAFETY: unshare(2) with CLONE_NEWNET affects this thread only
        // (which ends right after); no memory is passed.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(step("unshare(CLONE_NEWNET)")(io::Error::last_os_error()));
        }
        let fd = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(step("opening /proc/thread-self/ns/net"))?
            .into();
        let control = inet_socket().map_err(step("an inet socket for ioctls"))?;
        set_up(&control, "lo").map_err(step("bringing lo up"))?;
        for (index, (addr, prefix)) in nets.iter().enumerate() {
            add_address(&control, &format!("lo:{index}"), *addr, *prefix)
                .map_err(step("adding an allowed address to lo"))?;
        }
        let mut listeners = Vec::with_capacity(listens.len());
        for listen in listens {
            listeners.push(
                TcpListener::bind(SocketAddrV4::new(listen.addr, listen.port))
                    .map_err(step("listening for an allowed destination"))?,
            );
        }
        let dns = UdpSocket::bind((Ipv4Addr::LOCALHOST, 53)).map_err(step("binding DNS"))?;
        Ok(Self { fd, listeners, dns })
    }
}

/// An unbound UDP socket, for interface ioctls.
fn inet_socket() -> io::Result<UdpSocket> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new fd that nothing else owns.
    Ok(UdpSocket::from(unsafe { OwnedFd::from_raw_fd(raw) }))
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    req
}

fn ioctl(socket: &UdpSocket, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid `struct ifreq` that outlives the call.
    if unsafe { libc::ioctl(socket.as_raw_fd(), request, std::ptr::from_mut(req)) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_up(socket: &UdpSocket, name: &str) -> io::Result<()> {
    let mut req = ifreq(name);
    ioctl(socket, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the union's flags member.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(socket, libc::SIOCSIFFLAGS, &mut req)
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes of plain data.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Adds `addr/prefix` to the loopback under the label `label`; on a
/// loopback, every address of the prefix becomes local.
fn add_address(socket: &UdpSocket, label: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let mut req = ifreq(label);
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    ioctl(socket, libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq(label);
    req.ifr_ifru.ifru_netmask = sockaddr(Ipv4Addr::from(monocore_rules::egress::netmask(prefix)));
    ioctl(socket, libc::SIOCSIFNETMASK, &mut req)
}
