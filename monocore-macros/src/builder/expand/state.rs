//! The state module (`x_builder`): the `Unset` and `Set` states, the field
//! markers, and per required field the sealed traits that check them.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;

use super::names::{Names, Required};

/// The state module and the markers' `Member` impls.
pub(super) fn state_module(names: &Names<'_>) -> TokenStream {
    let Names {
        input,
        builder,
        state_mod,
        required,
    } = names;
    let vis = &input.vis;
    let ident = &input.ident;
    let struct_name = ident.to_string();
    let required_list = names.required_list();

    let markers = required.iter().map(|r| {
        let marker = &r.field.ident;
        let doc = format!("Marks the required field `{}`.", marker.unraw());
        quote! {
            #[doc = #doc]
            pub enum #marker {}
        }
    });
    let member_impls = required.iter().map(|r| {
        let marker = &r.field.ident;
        let ty = &r.field.ty;
        quote! {
            impl #state_mod::Member for #state_mod::members::#marker {
                type Value = #ty;
            }
        }
    });
    let traits = required
        .iter()
        .map(|r| required_traits(r, &struct_name, &required_list));

    let mod_doc = format!(
        "The typestate of [`{builder}`]: its states, field markers and the sealed \
         traits that check them."
    );
    let states = states(&struct_name);
    quote! {
        #[doc = #mod_doc]
        #vis mod #state_mod {
            #states

            /// One marker type per required field.
            #[allow(non_camel_case_types)]
            pub mod members {
                #(#markers)*
            }

            #(#traits)*
        }

        #(#member_impls)*
    }
}

/// The two sealed traits of one required field, whose
/// `#[diagnostic::on_unimplemented]` messages name it: `…IsSet` (a bound
/// of `build()`) and `…IsUnset` (a bound of its setter).
fn required_traits(r: &Required<'_>, struct_name: &str, required_list: &str) -> TokenStream {
    let name = r.field.ident.unraw().to_string();
    let marker = &r.field.ident;
    let (is_set, is_unset) = (&r.is_set, &r.is_unset);
    let missing = format!("missing required field `{name}`: call `.{name}(..)` before `.build()`");
    let missing_label = format!("`{name}` has not been set");
    let missing_note =
        format!("`{struct_name}` needs every required field before `.build()`: {required_list}");
    let twice =
        format!("required field `{name}` is already set: `.{name}(..)` can be called only once");
    let twice_label = format!("`{name}` was already set earlier in this chain");
    let twice_note = format!("remove one of the `.{name}(..)` calls");
    let set_doc =
        format!("Holds when the required field `{name}` has been set: a bound of `build()`.");
    let unset_doc = format!(
        "Holds while the required field `{name}` is not set: a bound of its setter, \
         so that it is set only once."
    );
    // Spanned at the field, so "the trait is implemented for" points there.
    let span = r.field.ident.span();
    let set_impl = quote_spanned! {span=>
        impl #is_set for Set<members::#marker> {
            fn into_value(self) -> <members::#marker as Member>::Value {
                self.0
            }
        }
    };
    let unset_impl = quote_spanned! {span=>
        impl #is_unset for Unset<members::#marker> {}
    };
    quote! {
        #[doc = #set_doc]
        #[diagnostic::on_unimplemented(
            message = #missing,
            label = #missing_label,
            note = #missing_note,
        )]
        pub trait #is_set: sealed::Sealed {
            #[doc(hidden)]
            fn into_value(self) -> <members::#marker as Member>::Value;
        }
        #set_impl

        #[doc = #unset_doc]
        #[diagnostic::on_unimplemented(
            message = #twice,
            label = #twice_label,
            note = #twice_note,
        )]
        pub trait #is_unset: sealed::Sealed {}
        #unset_impl
    }
}

/// The parts every state module has: `Member`, `Unset`, `Set` and the seal.
fn states(struct_name: &str) -> TokenStream {
    let member_doc =
        format!("A field of [`{struct_name}`](super::{struct_name}) and the type of its value.");
    quote! {
        mod sealed {
            pub trait Sealed {}
        }

        #[doc = #member_doc]
        pub trait Member {
            /// The field's type.
            type Value;
        }

        /// A required field that has not been set yet.
        pub struct Unset<F>(::core::marker::PhantomData<fn() -> F>);

        impl<F> Unset<F> {
            #[allow(dead_code)]
            pub(super) const fn new() -> Self {
                Self(::core::marker::PhantomData)
            }
        }

        /// A required field that has been set; holds its value.
        pub struct Set<F: Member>(F::Value);

        impl<F: Member> Set<F> {
            #[allow(dead_code)]
            pub(super) const fn new(value: F::Value) -> Self {
                Self(value)
            }
        }

        impl<F> sealed::Sealed for Unset<F> {}
        impl<F: Member> sealed::Sealed for Set<F> {}
    }
}
