//! Generates the typestate builder from a checked [`BuilderInput`].
//!
//! For a struct `X` with required fields `a` and `b`, the output is:
//!
//! - `mod x_builder` (the state module): `Unset<F>`, `Set<F>`, the field
//!   markers `members::{a, b}`, and per required field two sealed traits,
//!   `AIsSet` (bound of `build()`) and `AIsUnset` (bound of the setter), whose
//!   `#[diagnostic::on_unimplemented]` messages name the field;
//! - `XBuilder<A = Unset<members::a>, B = Unset<members::b>>`, `X::builder()`,
//!   `Default`, the setters and `build()`;
//! - with `#[builder(wrapper(..))]`, the wrapper builder around `XBuilder`.

use std::collections::HashSet;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Type, ext::IdentExt};

use super::parse::{BuilderInput, FieldInput, FieldKind, Shape, Wrapper};

/// The names generated for one required field.
struct Required<'a> {
    field: &'a FieldInput,
    /// The builder's type parameter for this field (`RootPath`).
    param: Ident,
    /// The sealed trait `build()` requires (`RootPathIsSet`).
    is_set: Ident,
    /// The sealed trait the setter requires (`RootPathIsUnset`).
    is_unset: Ident,
}

/// Everything the generators share.
struct Names<'a> {
    input: &'a BuilderInput,
    builder: Ident,
    state_mod: Ident,
    required: Vec<Required<'a>>,
}

pub(crate) fn expand(input: &BuilderInput) -> TokenStream {
    let builder = format_ident!("{}Builder", input.ident);
    let state_mod = format_ident!("{}", snake_case(&builder.to_string()));

    // A type parameter must not shadow a type the fields use.
    let mut taken = HashSet::new();
    for field in &input.fields {
        collect_idents(field.ty.to_token_stream(), &mut taken);
    }
    let required = input
        .fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Required))
        .map(|field| {
            let camel = camel_case(&field.ident.unraw().to_string());
            // Spanned at the field, so that "required by this bound" notes
            // point at the field rather than at the derive.
            let span = field.ident.span();
            let param = if taken.contains(&camel) {
                format_ident!("{camel}State", span = span)
            } else {
                format_ident!("{camel}", span = span)
            };
            Required {
                field,
                param,
                is_set: format_ident!("{camel}IsSet", span = span),
                is_unset: format_ident!("{camel}IsUnset", span = span),
            }
        })
        .collect();

    let names = Names {
        input,
        builder,
        state_mod,
        required,
    };
    let state_mod = state_module(&names);
    let builder = builder_struct(&names);
    let wrapper = input
        .wrapper
        .as_ref()
        .map(|w| wrapper_struct(&names, w))
        .unwrap_or_default();
    quote! {
        #state_mod
        #builder
        #wrapper
    }
}

impl Names<'_> {
    /// `RootPath, RamMib`
    fn params(&self) -> Vec<&Ident> {
        self.required.iter().map(|r| &r.param).collect()
    }

    /// `RootPath = x_builder::Unset<x_builder::members::root_path>, …`
    fn params_with_defaults(&self) -> Vec<TokenStream> {
        let state_mod = &self.state_mod;
        self.required
            .iter()
            .map(|r| {
                let param = &r.param;
                let marker = &r.field.ident;
                quote!(#param = #state_mod::Unset<#state_mod::members::#marker>)
            })
            .collect()
    }

    /// The type parameters after field `index` of the required fields is set.
    fn params_after_setting(&self, index: usize) -> Vec<TokenStream> {
        let state_mod = &self.state_mod;
        self.required
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i == index {
                    let marker = &r.field.ident;
                    quote!(#state_mod::Set<#state_mod::members::#marker>)
                } else {
                    r.param.to_token_stream()
                }
            })
            .collect()
    }

    /// `where RootPath: x_builder::RootPathIsSet, …`
    fn all_set_bounds(&self) -> Vec<TokenStream> {
        let state_mod = &self.state_mod;
        self.required
            .iter()
            .map(|r| {
                let (param, is_set) = (&r.param, &r.is_set);
                // Spanned at the field, so "required by this bound" points there.
                let state_mod = with_span(state_mod, r.field.ident.span());
                quote_spanned!(r.field.ident.span()=> #param: #state_mod::#is_set)
            })
            .collect()
    }

    fn required_list(&self) -> String {
        self.required
            .iter()
            .map(|r| format!("`{}`", r.field.ident.unraw()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn state_module(names: &Names<'_>) -> TokenStream {
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
    let traits = required.iter().map(|r| {
        let name = r.field.ident.unraw().to_string();
        let marker = &r.field.ident;
        let (is_set, is_unset) = (&r.is_set, &r.is_unset);
        let missing =
            format!("missing required field `{name}`: call `.{name}(..)` before `.build()`");
        let missing_label = format!("`{name}` has not been set");
        let missing_note = format!(
            "`{struct_name}` needs every required field before `.build()`: {required_list}"
        );
        let twice = format!(
            "required field `{name}` is already set: `.{name}(..)` can be called only once"
        );
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
    });

    let mod_doc = format!(
        "The typestate of [`{builder}`]: its states, field markers and the sealed \
         traits that check them."
    );
    let member_doc =
        format!("A field of [`{struct_name}`](super::{struct_name}) and the type of its value.");
    quote! {
        #[doc = #mod_doc]
        #vis mod #state_mod {
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

/// The setter's parameter type and the expression that turns the parameter
/// into the field's value.
fn setter_conversion(field: &FieldInput) -> (TokenStream, TokenStream) {
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
fn setter_docs(field: &FieldInput) -> TokenStream {
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

fn builder_struct(names: &Names<'_>) -> TokenStream {
    let Names {
        input,
        builder,
        state_mod,
        required,
    } = names;
    let vis = &input.vis;
    let ident = &input.ident;
    let params = names.params();
    let params_with_defaults = names.params_with_defaults();
    let all_set = names.all_set_bounds();

    let storage = input.fields.iter().map(|f| {
        let field = &f.ident;
        match required.iter().find(|r| r.field.ident == f.ident) {
            Some(r) => {
                let param = &r.param;
                quote!(#field: #param)
            }
            None => {
                let ty = &f.ty;
                quote!(#field: #ty)
            }
        }
    });
    let inits = input.fields.iter().map(|f| {
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
    });
    let values = input.fields.iter().map(|f| {
        let field = &f.ident;
        match required.iter().find(|r| r.field.ident == f.ident) {
            Some(r) => {
                let (param, is_set) = (&r.param, &r.is_set);
                quote!(#field: <#param as #state_mod::#is_set>::into_value(self.#field))
            }
            None => quote!(#field: self.#field),
        }
    });

    let setters = input.fields.iter().map(|f| {
        let field = &f.ident;
        let docs = setter_docs(f);
        let (param_ty, convert) = setter_conversion(f);
        match required.iter().position(|r| r.field.ident == f.ident) {
            None => quote! {
                #docs
                #vis fn #field(mut self, #field: #param_ty) -> Self {
                    self.#field = #convert;
                    self
                }
            },
            Some(index) => {
                let Some(r) = required.get(index) else {
                    return TokenStream::new();
                };
                let (param, is_unset) = (&r.param, &r.is_unset);
                let spanned_mod = with_span(state_mod, r.field.ident.span());
                let bound = quote_spanned!(r.field.ident.span()=> #param: #spanned_mod::#is_unset);
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
        }
    });

    let required_list = names.required_list();
    let builder_doc = if required.is_empty() {
        format!("A builder for [`{ident}`], made by [`{ident}::builder`].")
    } else {
        format!(
            "A typestate builder for [`{ident}`], made by [`{ident}::builder`].\n\n\
             Required fields: {required_list}. Each has a type parameter that goes from \
             `Unset` to `Set` when its setter is called. `build()` exists only once every \
             required field is set: calling it earlier, or setting a required field twice, \
             is a compile error that names the field. Every other field has a default.\n\n\
             Generated by `#[derive(TypestateBuilder)]`."
        )
    };
    let fn_doc = format!(
        "Starts a [`{builder}`]: every optional field at its default, no required field set."
    );
    let build_doc = format!(
        "Builds the [`{ident}`]. Exists only once every required field ({required_list}) \
         is set."
    );
    let build_doc = if required.is_empty() {
        format!("Builds the [`{ident}`].")
    } else {
        build_doc
    };
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

fn wrapper_struct(names: &Names<'_>, wrapper: &Wrapper) -> TokenStream {
    let Names {
        input,
        builder,
        state_mod,
        required,
    } = names;
    let vis = &input.vis;
    let ident = &input.ident;
    let Wrapper {
        name,
        target,
        build_with,
        output,
    } = wrapper;
    let params = names.params();
    let params_with_defaults = names.params_with_defaults();
    let all_set = names.all_set_bounds();

    let setters = input.fields.iter().map(|f| {
        let field = &f.ident;
        let docs = setter_docs(f);
        let (param_ty, _) = setter_conversion(f);
        match required.iter().position(|r| r.field.ident == f.ident) {
            None => quote! {
                #docs
                #vis fn #field(self, #field: #param_ty) -> Self {
                    #name {
                        inner: self.inner.#field(#field),
                    }
                }
            },
            Some(index) => {
                let Some(r) = required.get(index) else {
                    return TokenStream::new();
                };
                let (param, is_unset) = (&r.param, &r.is_unset);
                let spanned_mod = with_span(state_mod, r.field.ident.span());
                let bound = quote_spanned!(r.field.ident.span()=> #param: #spanned_mod::#is_unset);
                let after = names.params_after_setting(index);
                quote! {
                    #docs
                    #vis fn #field(self, #field: #param_ty) -> #name<#(#after),*>
                    where
                        #bound,
                    {
                        #name {
                            inner: self.inner.#field(#field),
                        }
                    }
                }
            }
        }
    });

    let target_doc = doc_link(target);
    let build_with_doc = build_with.to_token_stream().to_string().replace(' ', "");
    let required_list = names.required_list();
    let wrapper_doc = format!(
        "A typestate builder for {target_doc}, made by `{}::builder()`.\n\n\
         It has the setters of [`{builder}`], which it wraps, and the same compile-time \
         checks: required fields ({required_list}) must each be set exactly once before \
         `build()`. Its `build()` passes the built [`{ident}`] to `{build_with_doc}`.\n\n\
         Generated by `#[derive(TypestateBuilder)]` on [`{ident}`].",
        target.to_token_stream().to_string().replace(' ', ""),
    );
    let fn_doc =
        format!("Starts a [`{name}`]: every optional field at its default, no required field set.");
    let build_doc = format!(
        "Builds the [`{ident}`] and passes it to `{build_with_doc}`. Exists only once every \
         required field ({required_list}) is set."
    );
    quote! {
        #[doc = #wrapper_doc]
        #[must_use = "a builder does nothing until `.build()` is called"]
        #vis struct #name<#(#params_with_defaults),*> {
            inner: #builder<#(#params),*>,
        }

        impl #target {
            #[doc = #fn_doc]
            #vis fn builder() -> #name {
                #name {
                    inner: #ident::builder(),
                }
            }
        }

        impl ::core::default::Default for #name {
            fn default() -> Self {
                <#target>::builder()
            }
        }

        impl<#(#params),*> #name<#(#params),*> {
            #(#setters)*

            #[doc = #build_doc]
            #vis fn build(self) -> #output
            where
                #(#all_set,)*
            {
                #build_with(self.inner.build())
            }
        }
    }
}

/// `ident` as written at `span`, for diagnostics that should point there.
fn with_span(ident: &Ident, span: proc_macro2::Span) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(span);
    ident
}

/// An intra-doc link for a plain type path, plain code otherwise.
fn doc_link(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string().replace(' ', "");
    match ty {
        Type::Path(path) if path.qself.is_none() && text.chars().all(is_path_char) => {
            format!("[`{text}`]")
        }
        _ => format!("`{text}`"),
    }
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':'
}

fn collect_idents(tokens: TokenStream, out: &mut HashSet<String>) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                out.insert(ident.unraw().to_string());
            }
            TokenTree::Group(group) => collect_idents(group.stream(), out),
            TokenTree::Punct(_) | TokenTree::Literal(_) => {}
        }
    }
}

/// `root_path` → `RootPath`.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = true;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `MicroVmConfigBuilder` → `micro_vm_config_builder`.
fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::with_capacity(camel.len() + 4);
    let mut prev: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = match prev {
                Some(p) => {
                    p.is_lowercase() || p.is_ascii_digit() || (p.is_uppercase() && next_lower)
                }
                None => false,
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{camel_case, snake_case};

    #[test]
    fn names_convert_between_cases() {
        assert_eq!(camel_case("root_path"), "RootPath");
        assert_eq!(camel_case("ram_mib"), "RamMib");
        assert_eq!(
            snake_case("MicroVmConfigBuilder"),
            "micro_vm_config_builder"
        );
        assert_eq!(snake_case("HTTPServerBuilder"), "http_server_builder");
        assert_eq!(snake_case("Vm2Builder"), "vm2_builder");
    }
}
