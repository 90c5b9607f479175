//! The guest's network interface, configured before anything runs when the
//! spec has `FLAG_NET`: `eth0` gets its address, netmask and MTU and is
//! brought up, a default route goes through the gateway, and the gateway
//! becomes the only nameserver (a read-only bind over `/etc/resolv.conf`).
//!
//! Classic `SIOCSIF*` and `SIOCADDRT` ioctls, which need nothing beyond
//! `CONFIG_INET`: no DHCP client, no netlink library. Nothing here is a
//! security boundary (the guest's root may undo all of it); the policy is
//! enforced on the host.

use std::{
    ffi::{c_int, c_ulong, c_void},
    io,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use monocore_agent::{report::Step, spec::NetSpec};

use super::{
    setup::{Failure, fail},
    sys,
};

const AF_INET: u16 = 2;
const SOCK_DGRAM: c_int = 2;
const SOCK_CLOEXEC: c_int = 0o2000000;
const SIOCGIFFLAGS: c_ulong = 0x8913;
const SIOCSIFFLAGS: c_ulong = 0x8914;
const SIOCSIFADDR: c_ulong = 0x8916;
const SIOCSIFNETMASK: c_ulong = 0x891c;
const SIOCSIFMTU: c_ulong = 0x8922;
const SIOCADDRT: c_ulong = 0x890b;
const IFF_UP: i16 = 1;
const IFF_RUNNING: i16 = 0x40;
const RTF_UP: u16 = 1;
const RTF_GATEWAY: u16 = 2;

/// The interface libkrun's (only) virtio-net device is.
const IFACE: &[u8] = b"eth0";
/// Where the nameserver file is written before it is bound over
/// `/etc/resolv.conf` (the agent's own devtmpfs).
const RESOLV_SOURCE: &str = "/dev/.monocore-resolv.conf";
const RESOLV_TARGET: &[u8] = b"/etc/resolv.conf";

/// `struct sockaddr_in`, as `struct sockaddr`'s 16 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockaddrIn {
    family: u16,
    port: u16,
    addr: [u8; 4],
    zero: [u8; 8],
}

impl SockaddrIn {
    fn new(addr: Ipv4Addr) -> Self {
        Self {
            family: AF_INET,
            port: 0,
            addr: addr.octets(),
            zero: [0; 8],
        }
    }
}

/// `struct ifreq`: a name and a 24-byte union, of which one member is used.
#[repr(C)]
struct Ifreq {
    name: [u8; 16],
    data: IfreqData,
}

#[repr(C)]
union IfreqData {
    addr: SockaddrIn,
    flags: i16,
    mtu: c_int,
    pad: [u8; 24],
}

/// `struct rtentry` (x86_64 layout).
#[repr(C)]
struct Rtentry {
    pad1: c_ulong,
    dst: SockaddrIn,
    gateway: SockaddrIn,
    genmask: SockaddrIn,
    flags: u16,
    pad2: i16,
    pad3: c_ulong,
    pad4: *mut c_void,
    metric: i16,
    dev: *mut c_void,
    mtu: c_ulong,
    window: c_ulong,
    irtt: u16,
}

unsafe extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
}

fn ifreq(data: IfreqData) -> Ifreq {
    let mut name = [0u8; 16];
    if let Some(prefix) = name.get_mut(..IFACE.len()) {
        prefix.copy_from_slice(IFACE);
    }
    Ifreq { name, data }
}

fn check(status: c_int) -> io::Result<()> {
    if status < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One `ioctl` on `eth0` with `req`.
fn if_ioctl(fd: &OwnedFd, request: c_ulong, req: &mut Ifreq) -> io::Result<()> {
    // SAFETY: `req` is a valid, initialised `struct ifreq` that outlives
    // the call; the kernel reads or writes only its 40 bytes.
    check(unsafe { ioctl(fd.as_raw_fd(), request, std::ptr::from_mut(req)) })
}

/// Configures `eth0` and the default route from `net`.
fn configure_interface(net: &NetSpec) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { socket(c_int::from(AF_INET), SOCK_DGRAM | SOCK_CLOEXEC, 0) };
    check(raw)?;
    // SAFETY: `raw` is a new, open fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mask = u32::MAX
        .checked_shl(32 - u32::from(net.prefix))
        .unwrap_or(0);
    if_ioctl(
        &fd,
        SIOCSIFADDR,
        &mut ifreq(IfreqData {
            addr: SockaddrIn::new(net.address),
        }),
    )?;
    if_ioctl(
        &fd,
        SIOCSIFNETMASK,
        &mut ifreq(IfreqData {
            addr: SockaddrIn::new(Ipv4Addr::from(mask)),
        }),
    )?;
    let mtu = c_int::try_from(net.mtu).unwrap_or(c_int::MAX);
    if_ioctl(&fd, SIOCSIFMTU, &mut ifreq(IfreqData { mtu }))?;
    let mut flags = ifreq(IfreqData { pad: [0; 24] });
    if_ioctl(&fd, SIOCGIFFLAGS, &mut flags)?;
    // SAFETY: SIOCGIFFLAGS filled the union's `flags` member.
    let current = unsafe { flags.data.flags };
    flags.data = IfreqData {
        flags: current | IFF_UP | IFF_RUNNING,
    };
    if_ioctl(&fd, SIOCSIFFLAGS, &mut flags)?;
    let mut route = Rtentry {
        pad1: 0,
        dst: SockaddrIn::new(Ipv4Addr::UNSPECIFIED),
        gateway: SockaddrIn::new(net.gateway),
        genmask: SockaddrIn::new(Ipv4Addr::UNSPECIFIED),
        flags: RTF_UP | RTF_GATEWAY,
        pad2: 0,
        pad3: 0,
        pad4: std::ptr::null_mut(),
        metric: 0,
        dev: std::ptr::null_mut(),
        mtu: 0,
        window: 0,
        irtt: 0,
    };
    // SAFETY: `route` is a valid `struct rtentry` with no device name
    // pointer (the kernel picks the interface by the gateway's subnet).
    check(unsafe { ioctl(fd.as_raw_fd(), SIOCADDRT, std::ptr::from_mut(&mut route)) })
}

/// Makes the gateway the guest's nameserver: writes the file and binds it,
/// read-only, over `/etc/resolv.conf` (created if the root has none).
fn bind_resolv_conf(gateway: Ipv4Addr) -> Result<(), Failure> {
    std::fs::write(RESOLV_SOURCE, format!("nameserver {gateway}\n"))
        .map_err(|e| fail(Step::System, RESOLV_SOURCE.as_bytes())(e.raw_os_error().unwrap_or(5)))?;
    let target = super::setup::mount_point_file(Step::System, RESOLV_TARGET)?;
    let source = c"/dev/.monocore-resolv.conf";
    sys::mount_fs(Some(source), &target, None, sys::MS_BIND, None)
        .map_err(fail(Step::System, RESOLV_TARGET))?;
    sys::mount_fs(
        None,
        &target,
        None,
        sys::MS_BIND | sys::MS_REMOUNT | sys::MS_RDONLY,
        None,
    )
    .map_err(fail(Step::System, RESOLV_TARGET))
}

/// Configures the guest's network from `net` (see the module docs).
pub(crate) fn configure(net: &NetSpec) -> Result<(), Failure> {
    configure_interface(net)
        .map_err(|e| fail(Step::System, IFACE)(e.raw_os_error().unwrap_or(5)))?;
    bind_resolv_conf(net.gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_structs_have_the_kernels_sizes() {
        assert_eq!(size_of::<SockaddrIn>(), 16);
        assert_eq!(size_of::<Ifreq>(), 40);
        assert_eq!(size_of::<Rtentry>(), 120);
        assert_eq!(std::mem::offset_of!(Rtentry, flags), 56);
        assert_eq!(std::mem::offset_of!(Rtentry, dev), 88);
    }
}
