//! The guest's DNS server: answers A queries for the allow-list's names
//! (and the host's alias) with the addresses the policy holds, and nothing
//! else: every other name is NXDOMAIN, so a denied name does not resolve
//! and no query leaves the host. It runs on the host, in passt's
//! namespace, at 127.0.0.1:53, which the guest reaches as its gateway.
//!
//! Queries come from the guest and are untrusted: [`answer`] reads them
//! with bounds checks only, never panics, and answers a malformed query
//! with FORMERR or not at all.

use std::net::{Ipv4Addr, UdpSocket};

use super::policy::Policy;

const HEADER: usize = 12;
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
/// Answers are fixed while the VM runs, but stay short-lived in caches.
const TTL: u32 = 60;
/// At most this many addresses in an answer, which then fits the 512 bytes
/// of a UDP answer whatever the name's length.
const MAX_ANSWERS: usize = 16;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*pair.first()?, *pair.get(1)?]))
}

/// The question's name (lower case, dot-separated) and the offset just
/// past it. Compression is not allowed in a question.
fn read_name(bytes: &[u8]) -> Option<(String, usize)> {
    let mut at = HEADER;
    let mut name = String::new();
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 || name.len() + len > 253 {
            return None;
        }
        let label = bytes.get(at..at + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            name.push(char::from(b.to_ascii_lowercase()));
        }
        at += len;
    }
    Some((name, at))
}

/// The answer to one query `query`, or `None` to drop it (not a query, or
/// too short to answer).
pub(crate) fn answer(query: &[u8], policy: &Policy) -> Option<Vec<u8>> {
    let id = u16_at(query, 0)?;
    let flags = u16_at(query, 2)?;
    if flags & 0x8000 != 0 {
        return None; // a response, not a query
    }
    let rd = flags & 0x0100;
    let header = |rcode: u16, answers: u16, questions: u16| {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(0x8000 | 0x0400 | rd | 0x0080 | rcode).to_be_bytes());
        out.extend_from_slice(&questions.to_be_bytes());
        out.extend_from_slice(&answers.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    };
    if (flags >> 11) & 0xf != 0 {
        return Some(header(NOTIMP, 0, 0));
    }
    if u16_at(query, 4)? != 1 {
        return Some(header(FORMERR, 0, 0));
    }
    let Some((name, end)) = read_name(query) else {
        return Some(header(FORMERR, 0, 0));
    };
    let (Some(qtype), Some(qclass)) = (u16_at(query, end), u16_at(query, end + 2)) else {
        return Some(header(FORMERR, 0, 0));
    };
    let question = query.get(HEADER..end + 4)?;
    let Some(addrs) = policy.lookup(&name) else {
        let mut out = header(NXDOMAIN, 0, 1);
        out.extend_from_slice(question);
        return Some(out);
    };
    // The name exists; it has A records only.
    let addrs: &[Ipv4Addr] = if qtype == TYPE_A && qclass == CLASS_IN {
        addrs.get(..MAX_ANSWERS).unwrap_or(addrs)
    } else {
        &[]
    };
    let count = u16::try_from(addrs.len()).unwrap_or(0);
    let mut out = header(0, count, 1);
    out.extend_from_slice(question);
    for addr in addrs.iter().take(usize::from(count)) {
        out.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    Some(out)
}

/// Serves `socket` until it fails (the process ends).
pub(crate) fn serve(socket: UdpSocket, policy: &Policy) {
    let mut buf = [0u8; 512];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        if let Some(reply) = buf.get(..len).and_then(|q| answer(q, policy)) {
            let _ = socket.send_to(&reply, from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monocore_rules::egress::{GATEWAY, parse_egress_rule};

    fn policy() -> Policy {
        let rules = [parse_egress_rule("localhost:80").unwrap()];
        Policy::resolve(&rules, &|_, port| {
            Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
        })
        .unwrap()
    }

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(u8::try_from(label.len()).unwrap());
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn rcode(reply: &[u8]) -> u16 {
        u16_at(reply, 2).unwrap() & 0xf
    }

    #[test]
    fn an_allowed_name_gets_its_address_whatever_its_case() {
        let reply = answer(&query("LocalHost", TYPE_A), &policy()).unwrap();
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(rcode(&reply), 0);
        assert_eq!(u16_at(&reply, 6), Some(1));
        assert_eq!(reply[reply.len() - 4..], GATEWAY.octets());
        let alias = answer(&query("host.monocore.internal", TYPE_A), &policy()).unwrap();
        assert_eq!(alias[alias.len() - 4..], GATEWAY.octets());
    }

    #[test]
    fn any_other_name_is_nxdomain_and_other_types_are_empty() {
        let reply = answer(&query("example.com", TYPE_A), &policy()).unwrap();
        assert_eq!(rcode(&reply), NXDOMAIN);
        assert_eq!(u16_at(&reply, 6), Some(0));
        let aaaa = answer(&query("localhost", 28), &policy()).unwrap();
        assert_eq!((rcode(&aaaa), u16_at(&aaaa, 6)), (0, Some(0)));
    }

    #[test]
    fn malformed_queries_are_formerr_or_dropped_never_a_panic() {
        let p = policy();
        assert_eq!(answer(&[], &p), None);
        assert_eq!(answer(&[0x12], &p), None);
        let mut response = query("localhost", TYPE_A);
        response[2] |= 0x80;
        assert_eq!(answer(&response, &p), None);
        let mut long_label = query("localhost", TYPE_A);
        long_label[12] = 64;
        assert_eq!(rcode(&answer(&long_label, &p).unwrap()), FORMERR);
        let full = query("localhost", TYPE_A);
        for cut in 0..full.len() {
            let _ = answer(&full[..cut], &p);
        }
        let mut two = query("localhost", TYPE_A);
        two[5] = 2;
        assert_eq!(rcode(&answer(&two, &p).unwrap()), FORMERR);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_answered_or_dropped_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = answer(&bytes, &policy());
        }
    }
}
