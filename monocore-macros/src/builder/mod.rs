//! `#[derive(TypestateBuilder)]`: parse and validate the struct and its
//! `#[builder(..)]` attributes ([`parse`]), then generate the builder
//! ([`expand`]).

mod expand;
mod parse;

use proc_macro2::TokenStream;
use syn::DeriveInput;

/// Derives the builder for `input`, or returns every attribute error found.
pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let model = parse::BuilderInput::from_derive(input)?;
    Ok(expand::expand(&model))
}
