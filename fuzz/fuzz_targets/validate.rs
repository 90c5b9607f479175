//! `MicroVmConfig::validate_values` on arbitrary (bounded) configs:
//!
//! * it accepts exactly what the independent re-statement of the rules
//!   (`tests/support/oracle.rs`) accepts, and a rejection names a rule the
//!   config really breaks;
//! * the overlap verdict of the O(n log n) `find_overlap` equals the O(n²)
//!   pairwise reference over independently normalized paths;
//! * an accepted config survives the helper's config channel: a serde JSON
//!   round-trip gives back an equal config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::vm::MicroVmConfig;
use monocore_fuzz::{arb, oracle};

fuzz_target!(|input: arb::Config| {
    let config = input.to_config();
    if let Err(message) = oracle::check_against_oracle(&config) {
        panic!("{message}");
    }

    // Overlap: the shared rule's normalization and search against the
    // reference, whenever every mount point is valid.
    let shared: Option<Vec<String>> = config
        .mapped_dirs
        .iter()
        .map(|d| monocore_rules::normalize_mount_point(d.get_guest().as_str()).ok())
        .collect();
    let reference: Option<Vec<Vec<&str>>> = config
        .mapped_dirs
        .iter()
        .map(|d| oracle::guest_components(d.get_guest().as_str()).filter(|c| !c.is_empty()))
        .collect();
    assert_eq!(
        shared.is_some(),
        reference.is_some(),
        "{:?}",
        config.mapped_dirs
    );
    if let (Some(shared), Some(reference)) = (shared, reference) {
        for (s, r) in shared.iter().zip(&reference) {
            assert_eq!(*s, format!("/{}", r.join("/")));
        }
        let found = monocore_rules::find_overlap(&shared);
        assert_eq!(
            found.is_some(),
            oracle::reference_overlap(&reference).is_some(),
            "{shared:?}"
        );
        if let Some((i, j)) = found {
            assert!(i < j && oracle::components_overlap(&reference[i], &reference[j]));
        }
    }

    if config.validate_values().is_ok() {
        let json = serde_json::to_string(&config).expect("serialize");
        let back: MicroVmConfig = match serde_json::from_str(&json) {
            Ok(back) => back,
            Err(e) => panic!("a valid config does not survive JSON: {e}: {json}"),
        };
        assert_eq!(back, config);
    }
});
