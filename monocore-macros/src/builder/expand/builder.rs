//! `XBuilder<…>`: the struct, `X::builder()`, `Default`, the setters and
//! `build()`.

use proc_macro2::TokenStream;
use quote::quote;

use super::names::Names;
use super::setter::{setter_conversion, setter_docs};
use crate::builder::parse::{FieldInput, FieldKind};

/// The builder struct and its impls.
pub(super) fn builder_struct(names: &Names<'_>) -> TokenStream {
    let Names { input, builder, .. } = names;
    let vis = &input.vis;
    let ident = &input.ident;
    let params = names.params();
    let params_with_defaults = names.params_with_defaults();
    let all_set = names.all_set_bounds();
    let (storage, inits, values) = (storage(names), inits(names), values(names));
    let setters = input.fields.iter().map(|f| setter(names, f));
    let Docs {
        builder: builder_doc,
        start: fn_doc,
        build: build_doc,
    } = Docs::new(names);
    quote! {
        #[doc = #builder_doc]
        #[must_use = "a builder does nothing until `.build()` is called"]
        #vis struct #builder<#(#params_with_defaults),*> {
            #(#storage,)*
        }

        impl #ident {
            #[doc = #fn_doc]
            #vis fn builder() -> #builder {
                #builder {
                    #(#inits,)*
                }
            }
        }

        impl ::core::default::Default for #builder {
            fn default() -> Self {
                #ident::builder()
            }
        }

        impl<#(#params),*> #builder<#(#params),*> {
            #(#setters)*

            #[doc = #build_doc]
            #vis fn build(self) -> #ident
            where
                #(#all_set,)*
            {
                #ident {
                    #(#values,)*
                }
            }
        }
    }
}

/// Each field's slot: its state parameter if required, else its type.
fn storage(names: &Names<'_>) -> Vec<TokenStream> {
    names
        .input
        .fields
        .iter()
        .map(|f| {
            let field = &f.ident;
            match names.required_of(f) {
                Some((_, r)) => {
                    let param = &r.param;
                    quote!(#field: #param)
                }
                None => {
                    let ty = &f.ty;
                    quote!(#field: #ty)
                }
            }
        })
        .collect()
}

/// Each field's initial value: `Unset`, or its default.
fn inits(names: &Names<'_>) -> Vec<TokenStream> {
    let state_mod = &names.state_mod;
    names
        .input
        .fields
        .iter()
        .map(|f| {
            let field = &f.ident;
            match &f.kind {
                FieldKind::Required => quote!(#field: #state_mod::Unset::new()),
                FieldKind::Optional {
                    default: Some(expr),
                } => quote!(#field: #expr),
                FieldKind::Optional { default: None } => {
                    quote!(#field: ::core::default::Default::default())
                }
            }
        })
        .collect()
}

/// Each field's value in `build()`: taken out of its `Set` state if
/// required.
fn values(names: &Names<'_>) -> Vec<TokenStream> {
    let state_mod = &names.state_mod;
    names
        .input
        .fields
        .iter()
        .map(|f| {
            let field = &f.ident;
            match names.required_of(f) {
                Some((_, r)) => {
                    let (param, is_set) = (&r.param, &r.is_set);
                    quote!(#field: <#param as #state_mod::#is_set>::into_value(self.#field))
                }
                None => quote!(#field: self.#field),
            }
        })
        .collect()
}

/// The setter of `f`: an optional field's replaces its value; a required
/// field's moves the builder to the state where it is set.
fn setter(names: &Names<'_>, f: &FieldInput) -> TokenStream {
    let Names {
        input,
        builder,
        state_mod,
        ..
    } = names;
    let vis = &input.vis;
    let field = &f.ident;
    let docs = setter_docs(f);
    let (param_ty, convert) = setter_conversion(f);
    let Some((index, r)) = names.required_of(f) else {
        return quote! {
            #docs
            #vis fn #field(mut self, #field: #param_ty) -> Self {
                self.#field = #convert;
                self
            }
        };
    };
    let bound = names.unset_bound(r);
    let after = names.params_after_setting(index);
    let moved = input
        .fields
        .iter()
        .filter(|other| other.ident != f.ident)
        .map(|other| {
            let other = &other.ident;
            quote!(#other: self.#other)
        });
    quote! {
        #docs
        #vis fn #field(self, #field: #param_ty) -> #builder<#(#after),*>
        where
            #bound,
        {
            #builder {
                #field: #state_mod::Set::new(#convert),
                #(#moved,)*
            }
        }
    }
}

/// The builder's docs.
struct Docs {
    /// Of the struct.
    builder: String,
    /// Of `X::builder()`.
    start: String,
    /// Of `build()`.
    build: String,
}

impl Docs {
    fn new(names: &Names<'_>) -> Self {
        let (ident, builder) = (&names.input.ident, &names.builder);
        let required_list = names.required_list();
        let start = format!(
            "Starts a [`{builder}`]: every optional field at its default, no required field set."
        );
        if names.required.is_empty() {
            return Self {
                builder: format!("A builder for [`{ident}`], made by [`{ident}::builder`]."),
                start,
                build: format!("Builds the [`{ident}`]."),
            };
        }
        Self {
            builder: format!(
                "A typestate builder for [`{ident}`], made by [`{ident}::builder`].\n\n\
                 Required fields: {required_list}. Each has a type parameter that goes from \
                 `Unset` to `Set` when its setter is called. `build()` exists only once every \
                 required field is set: calling it earlier, or setting a required field twice, \
                 is a compile error that names the field. Every other field has a default.\n\n\
                 Generated by `#[derive(TypestateBuilder)]`."
            ),
            start,
            build: format!(
                "Builds the [`{ident}`]. Exists only once every required field ({required_list}) \
                 is set."
            ),
        }
    }
}
