//! Compiler-output tests (trybuild): each `ui-tests/fail/*.rs` case must fail
//! to compile with exactly the error in its `.stderr` snapshot, and each
//! `ui-tests/pass/*.rs` case must compile and run.
//!
//! Regenerate snapshots with `TRYBUILD=overwrite cargo test --test ui`, then
//! read every changed `.stderr`. The toolchain is pinned in
//! `rust-toolchain.toml` so the compiler's wording stays stable.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/fail/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}
