//! The monocore networking annotations (`io.monocore.net`, `.allow`,
//! `.publish`), as `ctr run --annotation` sets them.

use super::{pod::sandbox_spec, *};

fn annotated(spec: Value, pairs: &[(&str, &str)]) -> Value {
    let mut spec = spec;
    for (name, value) in pairs {
        spec["annotations"][name] = json!(value);
    }
    spec
}

#[test]
fn net_allow_and_publish_set_the_vms_network() {
    let bundle = Bundle::new();
    let spec = annotated(
        ctr_spec(),
        &[
            ("io.monocore.net", "true"),
            ("io.monocore.allow", "127.0.0.1:8080, pypi.org:443,"),
            ("io.monocore.publish", "8081:80"),
            ("org.example.other", "left alone"),
        ],
    );
    let mapped = map_ok(&spec, &bundle);
    let config = mapped.vm.get_config();
    assert!(config.net);
    let allow: Vec<String> = config.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["127.0.0.1:8080", "pypi.org:443"]);
    assert_eq!(
        config.port_map,
        [monocore::config::PortPair::with_distinct(8081, 80)]
    );
}

#[test]
fn a_bad_value_is_refused_naming_the_annotation_and_why() {
    let bundle = Bundle::new();
    let (at, message) = refusal(
        &annotated(ctr_spec(), &[("io.monocore.net", "yes")]),
        &bundle,
    );
    assert!(at.contains("io.monocore.net"), "{at}");
    assert!(
        message.contains("expected \"true\" or \"false\""),
        "{message}"
    );
    let spec = annotated(
        ctr_spec(),
        &[
            ("io.monocore.net", "true"),
            ("io.monocore.allow", "127.0.0.1:80,[::1]:80"),
        ],
    );
    let (at, message) = refusal(&spec, &bundle);
    assert!(at.contains("io.monocore.allow"), "{at}");
    assert!(message.contains("IPv4 only"), "{message}");
    let (_, message) = refusal(
        &annotated(ctr_spec(), &[("io.monocore.publish", "0:80")]),
        &bundle,
    );
    assert!(message.contains("port"), "{message}");
    let (at, message) = refusal(
        &annotated(ctr_spec(), &[("io.monocore.nett", "true")]),
        &bundle,
    );
    assert!(at.contains("io.monocore.nett"), "{at}");
    assert!(message.contains("not one of monocore's"), "{message}");
}

#[test]
fn an_allow_list_without_net_fails_validation() {
    let bundle = Bundle::new();
    let spec = annotated(ctr_spec(), &[("io.monocore.allow", "127.0.0.1:80")]);
    match map(&spec, bundle.path(), Role::Standalone) {
        Err(SpecError::Invalid(e)) => assert!(e.to_string().contains("needs `net`"), "{e}"),
        other => panic!("{:?}", other.map(|m| m.notes)),
    }
}

#[test]
fn a_pods_network_is_its_sandboxs() {
    let bundle = Bundle::new();
    let sandbox = annotated(
        sandbox_spec(&bundle),
        &[
            ("io.monocore.net", "true"),
            ("io.monocore.allow", "127.0.0.1:80"),
        ],
    );
    let mapped = map(&sandbox, bundle.path(), Role::Sandbox).unwrap();
    assert!(mapped.vm.get_config().net);
    let publish = annotated(sandbox_spec(&bundle), &[("io.monocore.publish", "8080:80")]);
    match map(&publish, bundle.path(), Role::Sandbox) {
        Err(SpecError::Refused { refusal, .. }) => {
            assert!(
                refusal.to_string().contains("publishes no port"),
                "{refusal}"
            )
        }
        other => panic!("{:?}", other.map(|m| m.notes)),
    }
    let container = annotated(ctr_spec(), &[("io.monocore.net", "true")]);
    match map(&container, bundle.path(), Role::PodContainer) {
        Err(SpecError::Refused { refusal, .. }) => {
            assert!(
                refusal.to_string().contains("share its VM's network"),
                "{refusal}"
            )
        }
        other => panic!("{:?}", other.map(|m| m.notes)),
    }
}
