//! The namespace, its relays and its DNS server together, without a VM:
//! a thread that enters the namespace stands for passt. Making a network
//! namespace needs CAP_SYS_ADMIN; where the test cannot, it says so.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::Arc,
    time::Duration,
};

use monocore_rules::egress::parse_egress_rule;

use super::*;

#[test]
fn inner_ports_skip_the_egress_ports() {
    let taken: BTreeSet<u16> = [61000, 61002].into();
    assert_eq!(inner_ports(&taken, 3), [61001, 61003, 61004]);
    assert_eq!(inner_ports(&BTreeSet::new(), 0), Vec::<u16>::new());
}

/// A server on the host's 127.0.0.1 that writes `hello` to each client.
fn hello_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(b"hello");
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `f` on a thread inside `netns`, as passt's sockets would be.
fn inside<T: Send + 'static>(netns: &Arc<OwnedFd>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = Arc::clone(netns);
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&*netns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn from_the_namespace_only_the_allowed_host_port_and_dns_answer() {
    let allowed = hello_server();
    let unlisted = hello_server();
    let closed = free_port();
    let rules = [
        parse_egress_rule(&format!("127.0.0.1:{allowed}")).unwrap(),
        parse_egress_rule(&format!("localhost:{closed}")).unwrap(),
    ];
    let resolve = |_: &str, port| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    let policy = policy::Policy::resolve(&rules, &resolve).unwrap();
    let ns = match namespace::Namespace::create(&policy) {
        Ok(ns) => ns,
        Err(NetError::Namespace { step, source })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            eprintln!(
                "SKIPPED: from_the_namespace_only_the_allowed_host_port_and_dns_answer: {step}: {source} (needs CAP_SYS_ADMIN)"
            );
            return;
        }
        Err(e) => panic!("{e}: {:?}", std::error::Error::source(&e)),
    };
    let policy = Arc::new(policy);
    let slots = Arc::new(relay::Slots::default());
    for listener in ns.listeners {
        let (policy, slots) = (Arc::clone(&policy), Arc::clone(&slots));
        std::thread::spawn(move || relay::serve_egress(listener, policy, slots));
    }
    let dns = ns.dns;
    let dns_policy = Arc::clone(&policy);
    std::thread::spawn(move || dns::serve(dns, &dns_policy));
    let netns = Arc::new(ns.fd);

    let got = inside(&netns, move || {
        let mut stream = TcpStream::connect(("127.0.0.1", allowed)).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(got, "hello");
    // Not listed: nothing listens there in the namespace.
    let refused = inside(&netns, move || {
        TcpStream::connect(("127.0.0.1", unlisted))
            .unwrap_err()
            .kind()
    });
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    // Anywhere else: no route.
    let unreachable = inside(&netns, || {
        TcpStream::connect_timeout(
            &SocketAddr::from(([192, 0, 2, 1], 80)),
            Duration::from_secs(5),
        )
        .unwrap_err()
        .raw_os_error()
    });
    assert_eq!(unreachable, Some(libc::ENETUNREACH));
    // Listed, but the host refuses: the relay resets the connection.
    let reset = inside(&netns, move || {
        let mut stream = TcpStream::connect(("127.0.0.1", closed)).unwrap();
        let mut buf = [0u8; 8];
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.read(&mut buf).map_err(|e| e.kind())
    });
    assert!(
        matches!(reset, Err(std::io::ErrorKind::ConnectionReset) | Ok(0)),
        "{reset:?}"
    );
    // DNS: the allowed name and the host's alias, nothing else.
    let answers = inside(&netns, || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        ["localhost", "host.monocore.internal", "other.example"].map(|name| {
            let mut query = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            for label in name.split('.') {
                query.push(u8::try_from(label.len()).unwrap());
                query.extend_from_slice(label.as_bytes());
            }
            query.extend_from_slice(&[0, 0, 1, 0, 1]);
            socket.send_to(&query, "127.0.0.1:53").unwrap();
            let mut buf = [0u8; 512];
            let len = socket.recv(&mut buf).unwrap();
            (buf[3] & 0xf, buf[len - 4..len].to_vec())
        })
    });
    assert_eq!(answers[0], (0, vec![10, 0, 2, 2]));
    assert_eq!(answers[1], (0, vec![10, 0, 2, 2]));
    assert_eq!(answers[2].0, 3);
}
