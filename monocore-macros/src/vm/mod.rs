//! The `vm!` macro, in steps, each a module over `proc_macro2` types only,
//! so that all of it can be exercised outside a proc-macro context (unit
//! tests, a fuzz target):
//!
//! - [`parse`]: the input's `key: value` pairs;
//! - [`read`]: the keys, and each value's shape, read into [`model`]'s
//!   types (a literal's text, pair, number) or left as an expression;
//! - [`check`]: every rule, through `monocore_rules::check_config` (the
//!   call run-time validation makes), each error on its token;
//! - [`expand`]: the `MicroVmConfig` (or `ImageVmConfig`) expression.
//!
//! Errors are collected in [`errors::Errors`], not returned at the first,
//! so one build shows every mistake.

pub mod check;
pub mod errors;
pub mod expand;
pub mod model;
pub mod parse;
pub mod read;

use proc_macro2::TokenStream;

/// Reads and checks the whole input, reporting every error at once.
pub fn check_input(input: parse::VmInput) -> syn::Result<model::Checked> {
    let mut errors = errors::Errors::default();
    let read = read::read(input, &mut errors);
    check::check(&read, &mut errors);
    read.finish(errors)
}

/// The whole macro: `vm!` input tokens to the expansion (or, on error, the
/// `compile_error!`s next to a well-typed stub).
pub fn vm(input: TokenStream) -> TokenStream {
    let parsed = match syn::parse2::<parse::VmInput>(input) {
        Ok(parsed) => parsed,
        Err(e) => return expand::fallback(e, false),
    };
    // The stub after an error has the type the input asked for.
    let image = parsed.fields.iter().any(|f| f.key == read::IMAGE_KEY);
    check_input(parsed).map_or_else(
        |e| expand::fallback(e, image),
        |checked| expand::expand(&checked),
    )
}

#[cfg(test)]
mod tests;
