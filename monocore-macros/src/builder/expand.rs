//! Generates the typestate builder from a checked [`BuilderInput`].
//!
//! For a struct `X` with required fields `a` and `b`, the output is:
//!
//! - `mod x_builder` (the state module, [`state`]): `Unset<F>`, `Set<F>`,
//!   the field markers `members::{a, b}`, and per required field two sealed
//!   traits, `AIsSet` (bound of `build()`) and `AIsUnset` (bound of the
//!   setter), whose `#[diagnostic::on_unimplemented]` messages name the
//!   field;
//! - `XBuilder<A = Unset<members::a>, B = Unset<members::b>>`, `X::builder()`,
//!   `Default`, the setters and `build()` ([`builder`]);
//! - with `#[builder(wrapper(..))]`, the wrapper builder around `XBuilder`
//!   ([`wrapper`]).
//!
//! [`names`] makes the generated names all of them share; [`setter`] what
//! the two kinds of setter share.

mod builder;
mod names;
mod setter;
mod state;
mod wrapper;

use proc_macro2::TokenStream;
use quote::quote;

use super::parse::BuilderInput;

pub(crate) fn expand(input: &BuilderInput) -> TokenStream {
    let names = names::Names::new(input);
    let state_mod = state::state_module(&names);
    let builder = builder::builder_struct(&names);
    let wrapper = input
        .wrapper
        .as_ref()
        .map(|w| wrapper::wrapper_struct(&names, w))
        .unwrap_or_default();
    quote! {
        #state_mod
        #builder
        #wrapper
    }
}
