// `net` with an allow-list and a port map published on the host's
// 127.0.0.1: the literals become the values `FromStr` gives, with nothing
// left to parse at run time; expressions are taken as they are.
use monocore::config::{AllowEntry, PortPair};
use monocore::vm;

fn main() {
    let config = vm! {
        root: "./rootfs",
        ram: 512,
        net: true,
        allow: ["127.0.0.1:5432", "PyPI.org.:443", "10.1.0.0/16:22"],
        port_map: ["8080:80"],
    };
    assert!(config.net && config.local_only);
    let expected: Vec<AllowEntry> = ["127.0.0.1:5432", "pypi.org:443", "10.1.0.0/16:22"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(config.allow, expected);
    assert_eq!(config.port_map, [PortPair::with_distinct(8080, 80)]);
    config.validate_values().unwrap();

    let on = true;
    let db: AllowEntry = "127.0.0.1:5432".parse().unwrap();
    let by_expression = vm! { root: "./rootfs", ram: 512, net: on, allow: [db.clone()] };
    assert_eq!(by_expression.allow, [db.clone()]);
    let whole = vm! { root: "./rootfs", ram: 512, net: on, allow: vec![db.clone()] };
    assert_eq!(whole.allow, [db]);
}
