//! Expansion of a checked `vm!` input into a `::monocore::vm::MicroVmConfig`.
//!
//! A literal expands to the value it stands for, already checked: no string
//! is parsed at run time (`"8080:80"` becomes `PortPair::with_distinct(8080,
//! 80)`, `"pypi.org:443"` becomes `AllowEntry::from(EgressRule { .. })`).
//! An expression is passed through a conversion that rustc type-checks; its
//! value is validated at run time by `MicroVm::from_config`.
//!
//! Fields not given come from `MicroVmConfig::new`, so the defaults are
//! written in one place only: `monocore` itself.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};

use monocore_rules::egress::EgressHost;

use super::model::{
    AllowLit, Checked, EnvLit, IpLit, List, Optional, PathLit, PortLit, RlimitLit, Source, StrLit,
    Value,
};

fn value<T>(
    value: &Value<T>,
    lit: impl Fn(&T) -> TokenStream,
    expr: impl Fn(&syn::Expr) -> TokenStream,
) -> TokenStream {
    match value {
        Value::Lit(l) => lit(l),
        Value::Expr(e) => expr(e),
        // `check` reports every invalid element, and nothing is expanded
        // after an error: this arm is never taken.
        Value::Invalid => quote!(::core::unreachable!()),
    }
}

/// `Some(Utf8UnixPathBuf)` from a string literal or an `Into` expression.
fn unix_path(v: &Value<StrLit>) -> TokenStream {
    value(
        v,
        |lit| quote!(::core::option::Option::Some(::monocore::typed_path::Utf8UnixPathBuf::from(#lit))),
        |e| quote!(::core::option::Option::Some(::core::convert::Into::<::monocore::typed_path::Utf8UnixPathBuf>::into(#e))),
    )
}

/// A `Vec` from an array literal (each element expanded by `lit`, or taken
/// through `elem` if it is an expression) or from any `IntoIterator`
/// expression (its items taken through `item`).
fn list<T>(
    list: &List<T>,
    lit: impl Fn(&T) -> TokenStream,
    elem: impl Fn(&syn::Expr) -> TokenStream,
    collect: impl Fn(&syn::Expr) -> TokenStream,
) -> TokenStream {
    match list {
        List::Items(items) => {
            let items = items.iter().map(|item| value(item, &lit, &elem));
            quote!(::std::vec![#(#items),*])
        }
        List::Expr(e) => collect(e),
    }
}

fn spanned_u16(n: u16, span: Span) -> Literal {
    let mut lit = Literal::u16_unsuffixed(n);
    lit.set_span(span);
    lit
}

fn spanned_u64(n: u64, span: Span) -> Literal {
    let mut lit = Literal::u64_unsuffixed(n);
    lit.set_span(span);
    lit
}

fn spanned_str(s: &str, span: Span) -> Literal {
    let mut lit = Literal::string(s);
    lit.set_span(span);
    lit
}

fn path_pair(p: &PathLit) -> TokenStream {
    let host = spanned_str(&p.host, p.span);
    let guest = spanned_str(&p.guest, p.span);
    // The same variant `PathPair::from_str` would pick.
    if p.host == p.guest {
        quote_spanned!(p.span=> ::monocore::config::PathPair::with_same(::monocore::typed_path::Utf8UnixPathBuf::from(#host)))
    } else {
        quote_spanned!(p.span=> ::monocore::config::PathPair::with_distinct(
            ::monocore::typed_path::Utf8UnixPathBuf::from(#host),
            ::monocore::typed_path::Utf8UnixPathBuf::from(#guest),
        ))
    }
}

fn port_pair(p: &PortLit) -> TokenStream {
    let host = spanned_u16(p.host, p.span);
    let guest = spanned_u16(p.guest, p.span);
    if p.host == p.guest {
        quote_spanned!(p.span=> ::monocore::config::PortPair::with_same(#host))
    } else {
        quote_spanned!(p.span=> ::monocore::config::PortPair::with_distinct(#host, #guest))
    }
}

/// `Ipv4Addr::new(a, b, c, d)`, each octet spanned on the literal.
fn ipv4(octets: [u8; 4], span: Span) -> TokenStream {
    let [a, b, c, d] = octets.map(|o| {
        let mut lit = Literal::u8_unsuffixed(o);
        lit.set_span(span);
        lit
    });
    quote_spanned!(span=> ::std::net::Ipv4Addr::new(#a, #b, #c, #d))
}

/// The entry as the parser made it: `AllowEntry::from(EgressRule { … })`,
/// nothing parsed at run time.
fn allow_entry(a: &AllowLit) -> TokenStream {
    let span = a.span;
    let host = match &a.rule.host {
        EgressHost::Addr(addr) => {
            let addr = ipv4(addr.octets(), span);
            quote_spanned!(span=> ::monocore::config::egress::EgressHost::Addr(#addr))
        }
        EgressHost::Net(net, prefix) => {
            let net = ipv4(net.octets(), span);
            let mut prefix = Literal::u8_unsuffixed(*prefix);
            prefix.set_span(span);
            quote_spanned!(span=> ::monocore::config::egress::EgressHost::Net(#net, #prefix))
        }
        EgressHost::Name(name) => {
            let name = spanned_str(name, span);
            quote_spanned!(span=> ::monocore::config::egress::EgressHost::Name(::std::string::String::from(#name)))
        }
    };
    let port = spanned_u16(a.rule.port, span);
    quote_spanned!(span=> ::monocore::config::AllowEntry::from(::monocore::config::egress::EgressRule {
        host: #host,
        port: #port,
    }))
}

fn env_pair(e: &EnvLit) -> TokenStream {
    let name = spanned_str(&e.name, e.span);
    let value = spanned_str(&e.value, e.span);
    quote_spanned!(e.span=> ::monocore::config::EnvPair::new(#name, #value))
}

fn rlimit(r: &RlimitLit) -> TokenStream {
    let span = r.resource.span();
    let resource = &r.resource;
    let (soft, hard) = (spanned_u64(r.soft, span), spanned_u64(r.hard, span));
    quote_spanned!(span=> ::monocore::vm::LinuxRlimit::new(::monocore::vm::LinuxRlimitResource::#resource, #soft, #hard))
}

fn ip(ip: &IpLit) -> TokenStream {
    let addr = ipv4(ip.octets, ip.span);
    quote_spanned!(ip.span=> ::core::option::Option::Some(#addr))
}

/// Collects an `IntoIterator` expression into `Vec<#ty>`.
fn collect_into(ty: TokenStream) -> impl Fn(&syn::Expr) -> TokenStream {
    move |e| {
        quote!(::core::iter::Iterator::collect::<::std::vec::Vec<#ty>>(
            ::core::iter::IntoIterator::into_iter(#e)
        ))
    }
}

/// The fields of the optional scalar keys given.
fn scalar_fields(o: &Optional) -> Vec<TokenStream> {
    let passthrough = |e: &syn::Expr| e.to_token_stream();
    let mut fields: Vec<TokenStream> = Vec::new();
    if let Some(v) = &o.vcpus {
        let v = value(v, |lit| lit.to_token_stream(), passthrough);
        fields.push(quote!(num_vcpus: #v));
    }
    if let Some(v) = &o.exec {
        let v = unix_path(v);
        fields.push(quote!(exec_path: #v));
    }
    if let Some(v) = &o.workdir {
        let v = unix_path(v);
        fields.push(quote!(workdir_path: #v));
    }
    if let Some(v) = &o.console {
        let v = unix_path(v);
        fields.push(quote!(console_output: #v));
    }
    if let Some(v) = &o.ip {
        let v = value(
            v,
            ip,
            |e| quote!(::core::option::Option::Some(::core::convert::Into::<::std::net::Ipv4Addr>::into(#e))),
        );
        fields.push(quote!(assigned_ip: #v));
    }
    if let Some(v) = &o.local_only {
        let v = value(v, |lit| lit.to_token_stream(), passthrough);
        fields.push(quote!(local_only: #v));
    }
    if let Some(v) = &o.net {
        let v = value(v, |lit| lit.to_token_stream(), passthrough);
        fields.push(quote!(net: #v));
    }
    if let Some(v) = &o.log_level {
        let v = value(
            v,
            |variant| quote!(::monocore::vm::LogLevel::#variant),
            passthrough,
        );
        fields.push(quote!(log_level: #v));
    }
    fields
}

/// The fields of the list keys given.
fn list_fields(o: &Optional) -> Vec<TokenStream> {
    let passthrough = |e: &syn::Expr| e.to_token_stream();
    let mut fields: Vec<TokenStream> = Vec::new();
    if let Some(v) = &o.args {
        let v = list(
            v,
            |lit| quote!(::std::string::String::from(#lit)),
            |e| quote!(::core::convert::Into::<::std::string::String>::into(#e)),
            |e| {
                quote!(::core::iter::Iterator::collect::<::std::vec::Vec<::std::string::String>>(
                    ::core::iter::Iterator::map(
                        ::core::iter::IntoIterator::into_iter(#e),
                        ::core::convert::Into::<::std::string::String>::into,
                    )
                ))
            },
        );
        fields.push(quote!(args: #v));
    }
    if let Some(v) = &o.env {
        let v = list(
            v,
            env_pair,
            passthrough,
            collect_into(quote!(::monocore::config::EnvPair)),
        );
        fields.push(quote!(env: #v));
    }
    if let Some(v) = &o.mapped_dirs {
        let v = list(
            v,
            path_pair,
            passthrough,
            collect_into(quote!(::monocore::config::PathPair)),
        );
        fields.push(quote!(mapped_dirs: #v));
    }
    if let Some(v) = &o.port_map {
        let v = list(
            v,
            port_pair,
            passthrough,
            collect_into(quote!(::monocore::config::PortPair)),
        );
        fields.push(quote!(port_map: #v));
    }
    if let Some(v) = &o.allow {
        let v = list(
            v,
            allow_entry,
            passthrough,
            collect_into(quote!(::monocore::config::AllowEntry)),
        );
        fields.push(quote!(allow: #v));
    }
    if let Some(v) = &o.rlimits {
        let v = list(
            v,
            rlimit,
            passthrough,
            collect_into(quote!(::monocore::vm::LinuxRlimit)),
        );
        fields.push(quote!(rlimits: #v));
    }
    fields
}

/// The `MicroVmConfig` struct literal; with `image`, an `ImageVmConfig`
/// holding the reference and the config (whose root is set at run time).
pub fn expand(c: &Checked) -> TokenStream {
    let root = match &c.source {
        Source::Root(root) => value(root, |lit| lit.to_token_stream(), |e| e.to_token_stream()),
        Source::Image(_) => quote!(::std::path::PathBuf::new()),
    };
    let ram = value(&c.ram, |lit| lit.to_token_stream(), |e| e.to_token_stream());
    let mut fields = scalar_fields(&c.optional);
    fields.extend(list_fields(&c.optional));

    let config = quote! {
        ::monocore::vm::MicroVmConfig {
            #(#fields,)*
            ..::monocore::vm::MicroVmConfig::new(#root, #ram)
        }
    };
    match &c.source {
        Source::Root(_) => config,
        Source::Image(image) => {
            let image = value(
                image,
                |lit| quote!(::std::string::String::from(#lit)),
                |e| quote!(::core::convert::Into::<::std::string::String>::into(#e)),
            );
            quote!(::monocore::image::ImageVmConfig::new(#image, #config))
        }
    }
}

/// What the macro emits after an error: the `compile_error!`s and a value of
/// the right type, so that code using the config does not report follow-on
/// errors that bury the real one.
///
/// `image` says the input has an `image` key: the stub is then an
/// `ImageVmConfig`.
pub fn fallback(error: syn::Error, image: bool) -> TokenStream {
    let errors = error.into_compile_error();
    let config = quote!(::monocore::vm::MicroVmConfig::new(
        ::std::path::PathBuf::new(),
        1
    ));
    let stub = if image {
        quote!(::monocore::image::ImageVmConfig::new(::std::string::String::new(), #config))
    } else {
        config
    };
    quote! {
        {
            #errors
            #stub
        }
    }
}
