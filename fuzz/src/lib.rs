//! Helpers shared by the fuzz targets.
//!
//! * [`oracle`]: the independent re-statement of the config rules, the same
//!   file the property tests use (`tests/support/oracle.rs`).
//! * [`vm`]: the `vm!` macro's parse/read/check/expand modules, compiled into
//!   this ordinary crate with `#[path]` (they use `proc_macro2` and `syn`
//!   only, never `proc_macro`, so they run outside a macro expansion).

pub mod arb;

#[path = "../../tests/support/oracle.rs"]
pub mod oracle;

#[path = "../../monocore-macros/src/vm/mod.rs"]
#[allow(dead_code)]
pub mod vm;

/// The longest error message a parse error may produce. An error echoes at
/// most a bounded excerpt of its input (each byte escapes to at most 6), so
/// a 1 MB input must not give a 1 MB message.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// `s` cut to at most `max` bytes, on a char boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Asserts that an error message names its input: it contains the quoted
/// (`{:?}`) form of at least the first 64 bytes of `input` (the message may
/// cut a long input, never a short one), and stays bounded in length.
pub fn assert_names_input(message: &str, input: &str) {
    let head = format!("{:?}", prefix(input, 64));
    // Without the closing quote: a longer excerpt continues where this stops.
    let open = &head[..head.len() - 1];
    assert!(
        message.contains(open),
        "error message {message:?} does not name the input {input:?}"
    );
    assert!(
        message.len() <= MAX_MESSAGE_LEN,
        "error message is {} bytes long for a {}-byte input",
        message.len(),
        input.len()
    );
}
