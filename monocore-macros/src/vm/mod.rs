//! The `vm!` macro: parse, check at compile time (read the values in
//! `validate`, apply the rules in `rules`), expand.
//!
//! Each step is a module over `proc_macro2` types only, so that all of it can
//! be exercised outside a proc-macro context (unit tests, a fuzz target).

pub mod expand;
pub mod parse;
pub mod rules;
pub mod validate;

use proc_macro2::TokenStream;

/// The whole macro: `vm!` input tokens to the expansion (or, on error, the
/// `compile_error!`s next to a well-typed stub).
pub fn vm(input: TokenStream) -> TokenStream {
    syn::parse2::<parse::VmInput>(input)
        .and_then(validate::check)
        .map_or_else(expand::fallback, |checked| expand::expand(&checked))
}
