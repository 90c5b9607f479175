//! Procedural macros for monocore.
//!
//! This file stays thin: each macro's parsing, validation and expansion live
//! in their own modules.
//!
//! - [`TypestateBuilder`]: derives a compile-time-checked typestate builder.

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

mod builder;

/// Derives a typestate builder for a struct with named fields.
///
/// For a struct `X`, the derive generates:
///
/// - `XBuilder<F1, F2, …>`, with one type parameter per required field, that
///   starts as `Unset<members::f1>` and becomes `Set<members::f1>` once the
///   field's setter has been called;
/// - `X::builder()` (and `XBuilder::default()`), the builder in its initial
///   state, every optional field at its default;
/// - one setter per field, named after it, carrying the field's docs;
/// - `build()`, which exists only when every required field is set, and
///   returns `X`;
/// - a module `x_builder` with the state types, the field markers and the
///   sealed traits whose `#[diagnostic::on_unimplemented]` messages name the
///   field: "missing required field `f1`: call `.f1(..)` before `.build()`"
///   and "required field `f1` is already set".
///
/// # Field attributes
///
/// - `#[builder(required)]`: the field must be set exactly once before
///   `build()`.
/// - `#[builder(default = expr)]`: the default of an optional field (without
///   it, `Default::default()`).
/// - `#[builder(into)]`: the setter takes `impl Into<T>` instead of `T`.
///
/// The setter's shape follows the field type: a `Vec<T>` field takes
/// `impl IntoIterator<Item = T>` (with `into`: `Item = impl Into<T>`) and
/// replaces the vector; an `Option<T>` field takes `T` (or `impl Into<T>`)
/// and stores `Some`.
///
/// # Struct attribute
///
/// `#[builder(wrapper(name = YBuilder, target = Y, build_with = path, output = Type))]`
/// also generates `YBuilder<…>` with the same type parameters and setters
/// (it wraps `XBuilder`), `Y::builder()`, and a `build()` that returns
/// `path(x)` of type `Type`: a builder for a type that is made from `X`,
/// for example after validation.
#[proc_macro_derive(TypestateBuilder, attributes(builder))]
pub fn derive_typestate_builder(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    builder::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
