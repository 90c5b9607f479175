//! What the builder's and the wrapper's setters share: the parameter type
//! and conversion for a field's shape, and the setter's docs.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;

use crate::builder::parse::{FieldInput, FieldKind, Shape};

/// The setter's parameter type and the expression that turns the parameter
/// into the field's value.
pub(super) fn setter_conversion(field: &FieldInput) -> (TokenStream, TokenStream) {
    let ident = &field.ident;
    let ty = &field.ty;
    match (&field.shape, field.into) {
        (Shape::Vec(item), false) => (
            quote!(impl ::core::iter::IntoIterator<Item = #item>),
            quote!(::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#ident))),
        ),
        (Shape::Vec(item), true) => (
            quote!(impl ::core::iter::IntoIterator<Item = impl ::core::convert::Into<#item>>),
            quote!(::core::iter::Iterator::collect(::core::iter::Iterator::map(
                ::core::iter::IntoIterator::into_iter(#ident),
                ::core::convert::Into::into,
            ))),
        ),
        (Shape::Option(inner), false) => (
            inner.to_token_stream(),
            quote!(::core::option::Option::Some(#ident)),
        ),
        (Shape::Option(inner), true) => (
            quote!(impl ::core::convert::Into<#inner>),
            quote!(::core::option::Option::Some(::core::convert::Into::into(#ident))),
        ),
        (Shape::Plain, false) => (ty.to_token_stream(), ident.to_token_stream()),
        (Shape::Plain, true) => (
            quote!(impl ::core::convert::Into<#ty>),
            quote!(::core::convert::Into::into(#ident)),
        ),
    }
}

/// The field's docs, then a line on how the setter behaves.
pub(super) fn setter_docs(field: &FieldInput) -> TokenStream {
    let docs = &field.docs;
    let name = field.ident.unraw();
    let how = match (&field.kind, &field.shape) {
        (FieldKind::Required, _) => format!(
            "*Required:* set `{name}` exactly once before `build()`; leaving it out, \
             or setting it twice, does not compile."
        ),
        (FieldKind::Optional { .. }, Shape::Vec(_)) => {
            "*Optional:* replaces the whole list; if never called, the field keeps its default."
                .to_owned()
        }
        (FieldKind::Optional { .. }, _) => {
            "*Optional:* if never called, the field keeps its default.".to_owned()
        }
    };
    let blank = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
    quote! {
        #(#docs)*
        #blank
        #[doc = #how]
    }
}
