//! The names the builder is generated with: the builder, its state module,
//! and per required field a type parameter and two sealed traits.

use std::collections::HashSet;

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;

use crate::builder::parse::{BuilderInput, FieldInput, FieldKind};

/// The names generated for one required field.
pub(super) struct Required<'a> {
    pub(super) field: &'a FieldInput,
    /// The builder's type parameter for this field (`RootPath`).
    pub(super) param: Ident,
    /// The sealed trait `build()` requires (`RootPathIsSet`).
    pub(super) is_set: Ident,
    /// The sealed trait the setter requires (`RootPathIsUnset`).
    pub(super) is_unset: Ident,
}

impl<'a> Required<'a> {
    /// The names of `field`, a required field; `taken` holds the type
    /// names the fields use, which a parameter must not shadow.
    fn new(field: &'a FieldInput, taken: &HashSet<String>) -> Self {
        let camel = camel_case(&field.ident.unraw().to_string());
        // Spanned at the field, so that "required by this bound" notes
        // point at the field rather than at the derive.
        let span = field.ident.span();
        let param = if taken.contains(&camel) {
            format_ident!("{camel}State", span = span)
        } else {
            format_ident!("{camel}", span = span)
        };
        Self {
            field,
            param,
            is_set: format_ident!("{camel}IsSet", span = span),
            is_unset: format_ident!("{camel}IsUnset", span = span),
        }
    }
}

/// Everything the generators share.
pub(super) struct Names<'a> {
    pub(super) input: &'a BuilderInput,
    pub(super) builder: Ident,
    pub(super) state_mod: Ident,
    pub(super) required: Vec<Required<'a>>,
}

impl<'a> Names<'a> {
    /// The names for `input`.
    pub(super) fn new(input: &'a BuilderInput) -> Self {
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
            .map(|field| Required::new(field, &taken))
            .collect();
        Self {
            input,
            builder,
            state_mod,
            required,
        }
    }

    /// `RootPath, RamMib`
    pub(super) fn params(&self) -> Vec<&Ident> {
        self.required.iter().map(|r| &r.param).collect()
    }

    /// `RootPath = x_builder::Unset<x_builder::members::root_path>, …`
    pub(super) fn params_with_defaults(&self) -> Vec<TokenStream> {
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
    pub(super) fn params_after_setting(&self, index: usize) -> Vec<TokenStream> {
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
    pub(super) fn all_set_bounds(&self) -> Vec<TokenStream> {
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

    /// `f`'s index among the required fields and its names, if it is one.
    pub(super) fn required_of(&self, f: &FieldInput) -> Option<(usize, &Required<'a>)> {
        self.required
            .iter()
            .enumerate()
            .find(|(_, r)| r.field.ident == f.ident)
    }

    /// `RootPath: x_builder::RootPathIsUnset`, the bound of a required
    /// field's setter, spanned at the field.
    pub(super) fn unset_bound(&self, r: &Required<'_>) -> TokenStream {
        let (param, is_unset) = (&r.param, &r.is_unset);
        let spanned_mod = with_span(&self.state_mod, r.field.ident.span());
        quote_spanned!(r.field.ident.span()=> #param: #spanned_mod::#is_unset)
    }

    pub(super) fn required_list(&self) -> String {
        self.required
            .iter()
            .map(|r| format!("`{}`", r.field.ident.unraw()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `ident` as written at `span`, for diagnostics that should point there.
pub(super) fn with_span(ident: &Ident, span: Span) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(span);
    ident
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
