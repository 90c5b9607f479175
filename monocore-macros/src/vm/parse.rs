//! Parsing of the `vm!` input: an optional `<` … `>` wrapper around
//! `key: value` pairs separated by commas (a trailing comma is allowed).
//!
//! Plain Rust over `proc_macro2` and `syn`: no `proc_macro` type appears here,
//! so this module can be compiled into an ordinary crate (a fuzz target, say)
//! with `#[path]`.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::{
    Expr, Ident, Token,
    ext::IdentExt,
    parse::{Parse, ParseStream, Parser},
    punctuated::Punctuated,
};

/// The whole macro input.
pub struct VmInput {
    /// The `key: value` pairs, in source order (duplicates kept, so that
    /// validation can point at both).
    pub fields: Vec<Field>,
}

/// One `key: value` pair.
pub struct Field {
    /// The key. Any identifier or keyword parses; validation rejects unknown
    /// keys with a suggestion.
    pub key: Ident,
    /// The value: a literal (checked at compile time) or any expression
    /// (checked at run time).
    pub value: Expr,
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input
            .call(Ident::parse_any)
            .map_err(|e| syn::Error::new(e.span(), "expected a key such as `ram`"))?;
        input.parse::<Token![:]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `:` after the key `{key}`, as in `{key}: value`"),
            )
        })?;
        let value = input.parse()?;
        Ok(Self { key, value })
    }
}

impl Parse for VmInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let tokens: TokenStream = input.parse()?;
        let inner = strip_angle_wrapper(tokens)?;
        let fields = Punctuated::<Field, Token![,]>::parse_terminated.parse2(inner)?;
        Ok(Self {
            fields: fields.into_iter().collect(),
        })
    }
}

fn is_punct(tree: &TokenTree, ch: char) -> bool {
    matches!(tree, TokenTree::Punct(p) if p.as_char() == ch)
}

/// Removes the optional `<` … `>` wrapper (`vm!(<root: "r", ram: 1>)`).
///
/// Rust's grammar requires a macro call to open with `(`, `[` or `{`, so
/// `vm!<…>` itself cannot be written; the wrapper goes inside the delimiters.
/// The `>` is taken off the token list before the pairs are parsed: otherwise
/// the last value's expression would try to read it as a comparison.
fn strip_angle_wrapper(tokens: TokenStream) -> syn::Result<TokenStream> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let Some((first, rest)) = trees.split_first() else {
        return Ok(TokenStream::new());
    };
    let opens =
        matches!(first, TokenTree::Punct(p) if p.as_char() == '<' && p.spacing() == Spacing::Alone);
    if !opens {
        return Ok(trees.into_iter().collect());
    }
    match rest.split_last() {
        Some((last, middle)) if is_punct(last, '>') => Ok(middle.iter().cloned().collect()),
        _ => Err(syn::Error::new(
            first.span(),
            "this `<` opens a `<key: value, …>` wrapper that is never closed: end the input with `>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn keys(tokens: TokenStream) -> Vec<String> {
        syn::parse2::<VmInput>(tokens)
            .unwrap()
            .fields
            .iter()
            .map(|f| f.key.to_string())
            .collect()
    }

    #[test]
    fn pairs_with_and_without_trailing_comma() {
        assert_eq!(keys(quote!(root: "r", ram: 1)), ["root", "ram"]);
        assert_eq!(keys(quote!(root: "r", ram: 1,)), ["root", "ram"]);
        assert!(keys(quote!()).is_empty());
    }

    #[test]
    fn angle_wrapper_is_stripped_so_the_last_value_is_not_a_comparison() {
        assert_eq!(keys(quote!(<root: "r", ram: 1024>)), ["root", "ram"]);
        assert_eq!(
            keys(quote!(<root: "r", ram: a > b, vcpus: 2,>)),
            ["root", "ram", "vcpus"]
        );
        let err = syn::parse2::<VmInput>(quote!(<root: "r", ram: 1))
            .err()
            .unwrap();
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    #[test]
    fn keywords_parse_as_keys_so_validation_can_name_them() {
        assert_eq!(keys(quote!(type: 1)), ["type"]);
    }

    #[test]
    fn missing_colon_names_the_key() {
        let err = syn::parse2::<VmInput>(quote!(ram 1024)).err().unwrap();
        assert_eq!(
            err.to_string(),
            "expected `:` after the key `ram`, as in `ram: value`"
        );
    }

    #[test]
    fn values_are_expressions() {
        let input = syn::parse2::<VmInput>(quote!(args: ["a", x], ram: { 1 + 2 })).unwrap();
        assert!(matches!(
            input.fields.first().map(|f| &f.value),
            Some(Expr::Array(_))
        ));
        assert!(matches!(
            input.fields.get(1).map(|f| &f.value),
            Some(Expr::Block(_))
        ));
    }
}
