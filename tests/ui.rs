//! Compile-fail and compile-pass tests of monocore's macros (trybuild).
//!
//! Each `ui-tests/fail/*.rs` case must fail to compile with exactly the
//! message in the `.stderr` next to it; each `ui-tests/pass/*.rs` case must
//! compile and run. Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test --test ui`, then read every changed
//! `.stderr` as a user would.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/fail/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}
