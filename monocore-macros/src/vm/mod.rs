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
    let parsed = match syn::parse2::<parse::VmInput>(input) {
        Ok(parsed) => parsed,
        Err(e) => return expand::fallback(e, false),
    };
    // The stub after an error has the type the input asked for.
    let image = parsed.fields.iter().any(|f| f.key == validate::IMAGE_KEY);
    validate::check(parsed).map_or_else(
        |e| expand::fallback(e, image),
        |checked| expand::expand(&checked),
    )
}
