use super::*;

fn kind(s: &str) -> EgressRuleErrorKind {
    match parse_egress_rule(s) {
        Ok(rule) => panic!("{s:?} parsed as {rule}"),
        Err(e) => {
            assert_eq!(e.input, s);
            e.kind
        }
    }
}

fn ok(s: &str) -> EgressRule {
    parse_egress_rule(s).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_three_forms_parse_and_print_back() {
    assert_eq!(
        ok("192.0.2.7:443").host,
        EgressHost::Addr(Ipv4Addr::new(192, 0, 2, 7))
    );
    assert_eq!(
        ok("198.51.100.0/24:80").host,
        EgressHost::Net(Ipv4Addr::new(198, 51, 100, 0), 24)
    );
    assert_eq!(
        ok("Files.Example.COM.:8443").host,
        EgressHost::Name("files.example.com".into())
    );
    assert_eq!(ok("localhost:1").to_string(), "localhost:1");
    for s in ["127.0.0.1:65535", "198.51.100.0/24:80", "a-b.c:9"] {
        assert_eq!(ok(s).to_string(), s);
    }
}

#[test]
fn a_port_is_required_and_must_be_1_to_65535() {
    assert_eq!(kind("example.com"), EgressRuleErrorKind::MissingPort);
    assert_eq!(kind("10.1.0.0/16"), EgressRuleErrorKind::MissingPort);
    assert_eq!(
        kind("example.com:0"),
        EgressRuleErrorKind::InvalidPort("0".into())
    );
    assert_eq!(
        kind("example.com:65536"),
        EgressRuleErrorKind::InvalidPort("65536".into())
    );
    assert_eq!(
        kind("example.com:+80"),
        EgressRuleErrorKind::InvalidPort("+80".into())
    );
    assert_eq!(
        kind("example.com:"),
        EgressRuleErrorKind::InvalidPort(String::new())
    );
    assert_eq!(kind(""), EgressRuleErrorKind::Empty);
}

#[test]
fn ipv6_is_refused_with_the_reason() {
    assert_eq!(kind("[::1]:80"), EgressRuleErrorKind::Ipv6);
    assert_eq!(kind("::1:80"), EgressRuleErrorKind::Ipv6);
    assert!(
        parse_egress_rule("[::1]:80")
            .unwrap_err()
            .to_string()
            .contains("IPv4 only")
    );
}

#[test]
fn networks_need_a_prefix_up_to_32_and_no_host_bits() {
    assert_eq!(
        kind("198.51.100.0/33:80"),
        EgressRuleErrorKind::InvalidPrefix("33".into())
    );
    assert_eq!(
        kind("198.51.100.0/x:80"),
        EgressRuleErrorKind::InvalidPrefix("x".into())
    );
    assert_eq!(
        kind("198.51.100.9/24:80"),
        EgressRuleErrorKind::HostBitsSet {
            addr: Ipv4Addr::new(198, 51, 100, 9),
            prefix: 24,
            network: Ipv4Addr::new(198, 51, 100, 0),
        }
    );
    assert_eq!(
        kind("name/24:80"),
        EgressRuleErrorKind::InvalidHost("name/24".into())
    );
}

#[test]
fn the_host_loopback_is_127_0_0_1_alone() {
    assert_eq!(ok("127.0.0.1:80").host, EgressHost::Addr(HOST_LOOPBACK));
    assert_eq!(
        kind("127.0.0.2:80"),
        EgressRuleErrorKind::Loopback("127.0.0.2".into())
    );
    assert_eq!(
        kind("127.0.0.0/8:80"),
        EgressRuleErrorKind::Loopback("127.0.0.0/8".into())
    );
    assert_eq!(
        kind("0.0.0.0/0:80"),
        EgressRuleErrorKind::GuestSubnet("0.0.0.0/0".into())
    );
    assert_eq!(
        kind("96.0.0.0/3:80"),
        EgressRuleErrorKind::Loopback("96.0.0.0/3".into())
    );
}

#[test]
fn the_guest_subnet_and_non_destinations_are_refused() {
    assert_eq!(
        kind("10.0.2.2:80"),
        EgressRuleErrorKind::GuestSubnet("10.0.2.2".into())
    );
    assert_eq!(
        kind("10.0.0.0/8:80"),
        EgressRuleErrorKind::GuestSubnet("10.0.0.0/8".into())
    );
    assert_eq!(
        kind("10.0.2.128/25:80"),
        EgressRuleErrorKind::GuestSubnet("10.0.2.128/25".into())
    );
    assert!(ok("10.0.3.0/24:80").allows(Ipv4Addr::new(10, 0, 3, 9), 80));
    for addr in ["0.0.0.0", "224.0.0.1", "255.255.255.255"] {
        assert!(matches!(
            kind(&format!("{addr}:80")),
            EgressRuleErrorKind::NotADestination(_)
        ));
    }
}

#[test]
fn names_are_dns_names() {
    for bad in [
        "-a.com",
        "a-.com",
        "a..b",
        "a_b.com",
        "1.2.3",
        "300.1.1.1",
        "é.com",
        ".",
    ] {
        assert_eq!(
            kind(&format!("{bad}:80")),
            EgressRuleErrorKind::InvalidHost(bad.into()),
            "{bad}"
        );
    }
    let long_label = "a".repeat(64);
    assert!(matches!(
        kind(&format!("{long_label}.com:80")),
        EgressRuleErrorKind::InvalidHost(_)
    ));
    let long_name = vec!["a".repeat(63); 4].join(".");
    assert_eq!(long_name.len(), 255);
    assert!(matches!(
        kind(&format!("{long_name}:80")),
        EgressRuleErrorKind::InvalidHost(_)
    ));
    assert!(parse_egress_rule("3com.example:80").is_ok());
}

#[test]
fn allows_matches_address_network_and_port() {
    let one = ok("192.0.2.7:443");
    assert!(one.allows(Ipv4Addr::new(192, 0, 2, 7), 443));
    assert!(!one.allows(Ipv4Addr::new(192, 0, 2, 7), 444));
    assert!(!one.allows(Ipv4Addr::new(192, 0, 2, 8), 443));
    let net = ok("198.51.100.0/24:80");
    assert!(net.allows(Ipv4Addr::new(198, 51, 100, 255), 80));
    assert!(!net.allows(Ipv4Addr::new(198, 51, 101, 0), 80));
    assert!(!ok("localhost:80").allows(HOST_LOOPBACK, 80));
}
