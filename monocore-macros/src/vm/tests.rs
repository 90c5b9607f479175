//! The whole of reading and checking (`check_input`), as the macro runs it.

use monocore_rules::limits;
use proc_macro2::Span;
use quote::quote;
use syn::{Expr, ExprArray, Ident, Lit, LitStr};

use super::check_input;
use super::parse::{Field, VmInput};

fn errors_of(tokens: proc_macro2::TokenStream) -> Vec<String> {
    let input: VmInput = syn::parse2(tokens).unwrap();
    match check_input(input) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn a_valid_input_has_no_errors() {
    assert!(errors_of(quote!(root: "r", ram: 1)).is_empty());
    assert!(errors_of(quote!(root: r, ram: n, log_level: Info, ip: ip)).is_empty());
}

#[test]
fn every_error_is_reported_at_once() {
    let errors = errors_of(quote!(ram: 0, vcpus: 256, rma: 1, exec: "a\0b"));
    assert!(
        errors.iter().any(|e| e.contains("ram (MiB) is 0")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("vcpus is 256")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("did you mean `ram`?")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("holds a NUL byte")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("missing key `root`")),
        "{errors:?}"
    );
}

/// Regression (found by the `vm_macro` fuzz target): `args` without
/// `exec` compiled, giving a config that `validate` always rejects.
#[test]
fn literal_args_need_exec() {
    assert_eq!(
        errors_of(quote!(root: "r", ram: 1, args: ["a"])),
        [
            "1 argument(s) given without an exec path: they have no program to run; add `exec`, the program to run"
        ]
    );
    assert!(errors_of(quote!(root: "r", ram: 1, args: ["a"], exec: "/bin/echo")).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, exec: e, args: ["a"])).is_empty());
    // Nothing to drop: an empty list, or an expression checked at run time.
    assert!(errors_of(quote!(root: "r", ram: 1, args: [])).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, args: list)).is_empty());
}

/// A value that could not be read is unknown, not absent: the rules that
/// need it say nothing more (one problem, one message).
#[test]
fn a_value_that_could_not_be_read_is_not_also_missing() {
    let errors = errors_of(quote!(root: "r", ram: 1, exec: 5, args: ["a"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("wrong type for `exec`"), "{errors:?}");
    let errors = errors_of(quote!(root: "r", ram: 1, local_only: "no", port_map: ["80"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("wrong type for `local_only`"),
        "{errors:?}"
    );
}

#[test]
fn duplicates_point_at_both_places() {
    let errors = errors_of(quote!(root: "r", ram: 1, ram: 2));
    assert_eq!(
        errors,
        [
            "duplicate key `ram`: each key may be given once; remove one of them",
            "`ram` is first given here"
        ]
    );
    let errors = errors_of(
        quote!(root: "r", ram: 1, local_only: false, port_map: ["80", "8080:80", "80:81"]),
    );
    assert_eq!(
        errors,
        [
            "guest port 80 is mapped twice: each guest port may be mapped once (libkrun refuses two host ports for one guest port)",
            "guest port 80 is first mapped here",
            "host port 80 is mapped twice: each host port may be mapped once",
            "host port 80 is first mapped here",
        ]
    );
}

#[test]
fn log_level_identifiers_are_checked_and_variables_are_not() {
    assert!(errors_of(quote!(root: "r", ram: 1, log_level: level)).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, log_level: LogLevel::Info)).is_empty());
    let errors = errors_of(quote!(root: "r", ram: 1, log_level: Infoo));
    assert_eq!(errors, ["unknown log level `Infoo`: did you mean `Info`?"]);
}

/// `root: "r", ram: 1, <key>: [<n> string literals]` as tokens.
fn with_list(key: &str, n: usize, element: impl Fn(usize) -> String) -> proc_macro2::TokenStream {
    let key = proc_macro2::Ident::new(key, Span::call_site());
    let elements = (0..n).map(|i| proc_macro2::Literal::string(&element(i)));
    quote!(root: "r", ram: 1, exec: "/x", #key: [#(#elements),*])
}

/// `root: "r", ram: 1, <key>: [<n> string literals]`, built as a syntax
/// tree directly: parsing 100k tokens with syn in a debug build takes
/// seconds, and is rustc's (linear) cost, not the macro's.
fn input_with_list(key: &str, n: usize) -> VmInput {
    let lit = |s: &str| -> Expr {
        Expr::Lit(syn::ExprLit {
            attrs: Vec::new(),
            lit: Lit::Str(LitStr::new(s, Span::call_site())),
        })
    };
    let mut input: VmInput = syn::parse2(quote!(root: "r", ram: 1)).unwrap();
    let elems = (0..n).map(|i| lit(&format!("/d{i}"))).collect();
    input.fields.push(Field {
        key: Ident::new(key, Span::call_site()),
        value: Expr::Array(ExprArray {
            attrs: Vec::new(),
            bracket_token: Default::default(),
            elems,
        }),
    });
    input
}

#[test]
fn a_hundred_thousand_element_list_is_too_many_not_a_hang() {
    for (key, n, max) in [
        ("mapped_dirs", 100_000, limits::max_mapped_dirs(false)),
        (
            "port_map",
            limits::MAX_PORT_MAPPINGS + 1,
            limits::MAX_PORT_MAPPINGS,
        ),
        ("args", limits::MAX_ARGS + 1, limits::MAX_ARGS),
        ("env", limits::MAX_ENV_VARS + 1, limits::MAX_ENV_VARS),
        ("rlimits", limits::MAX_RLIMITS + 1, limits::MAX_RLIMITS),
        (
            "allow",
            limits::MAX_ALLOW_ENTRIES + 1,
            limits::MAX_ALLOW_ENTRIES,
        ),
    ] {
        let input = input_with_list(key, n);
        let start = std::time::Instant::now();
        let errors: Vec<String> = match check_input(input) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        let elapsed = start.elapsed();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!("too many {key}: {n} given, at most {max} allowed")),
            "{errors:?}"
        );
        // Includes dropping the 100k-element tree.
        assert!(
            elapsed < std::time::Duration::from_millis(500),
            "{key}: {elapsed:?}"
        );
    }
}

#[test]
fn an_overlong_literal_is_an_error_that_does_not_echo_it() {
    // Any literal over the limit takes the same path as a 10 MB one (which
    // only makes syn's unescaping, in a debug build, slow).
    let len = limits::MAX_STRING_LEN + 1;
    let tokens = with_list("args", 1, |_| "a".repeat(len));
    let errors = errors_of(tokens);
    assert_eq!(
        errors.len(),
        1,
        "{:?}",
        errors.iter().map(String::len).collect::<Vec<_>>()
    );
    assert_eq!(
        errors[0],
        format!(
            "{} bytes is too long: at most {} bytes are allowed",
            len,
            limits::MAX_STRING_LEN
        )
    );
}

#[test]
fn the_command_is_bounded_as_execve_counts_it() {
    // `exec: "/x"` and one argument, each with its NUL and pointer.
    let room = limits::command_space(None);
    let fits = room - (2 + 9) - 9;
    assert!(
        errors_of(with_list("args", 1, |_| "a".repeat(fits))).is_empty()
            || fits > limits::MAX_STRING_LEN
    );
    let n = room / (limits::MAX_STRING_LEN + 9) + 1;
    let errors = errors_of(with_list("args", n, |_| "a".repeat(limits::MAX_STRING_LEN)));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("the command (exec path, arguments and environment) takes"),
        "{errors:?}"
    );
    // Unknown limits (an expression) give the most room, never a false error.
    let mut tokens = with_list("args", n, |_| "a".repeat(limits::MAX_STRING_LEN));
    tokens.extend(quote!(, rlimits: limits));
    assert!(errors_of(tokens).is_empty());
}

#[test]
fn rules_that_need_other_keys_use_their_literals() {
    let errors = errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("port mapping 8080:80 needs networking"),
        "{errors:?}"
    );
    assert!(
        errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"], local_only: false)).is_empty()
    );
    assert!(errors_of(quote!(root: "r", ram: 1, port_map: ["8080:80"], local_only: l)).is_empty());
    let dirs = |n: usize| (0..n).map(|i| format!("/h:/m{i}")).collect::<Vec<_>>();
    // TSI shares the vsock device: as many dirs with it as without.
    let max = dirs(limits::max_mapped_dirs(false));
    assert!(errors_of(quote!(root: "r", ram: 1, mapped_dirs: [#(#max),*])).is_empty());
    assert!(
        errors_of(quote!(root: "r", ram: 1, local_only: false, mapped_dirs: [#(#max),*]))
            .is_empty()
    );
    // `net`'s network device takes a line; unknown, it may not.
    let errors = errors_of(quote!(root: "r", ram: 1, net: true, mapped_dirs: [#(#max),*]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("too many mapped_dirs"), "{errors:?}");
    assert!(errors_of(quote!(root: "r", ram: 1, net: n, mapped_dirs: [#(#max),*])).is_empty());
    let over = dirs(limits::max_mapped_dirs(false) + 1);
    let errors = errors_of(quote!(root: "r", ram: 1, local_only: false, mapped_dirs: [#(#over),*]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("too many mapped_dirs"), "{errors:?}");
    let errors = errors_of(quote!(root: "r", ram: 1, ip: "10.0.0.2"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with("; remove `ip`"), "{errors:?}");
}

#[test]
fn a_misspelt_required_key_is_not_also_reported_missing() {
    let errors = errors_of(quote!(root: "r", rma: 1));
    assert_eq!(errors, ["unknown key `rma`: did you mean `ram`?"]);
    let errors = errors_of(quote!(root: "r", banana: 1));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("unknown key `banana`: expected one of `root`, `ram`,"));
    assert!(errors[1].starts_with("missing key `ram`"));
}

#[test]
fn an_image_is_checked_as_the_library_parses_it_and_replaces_root() {
    assert!(errors_of(quote!(image: "alpine:3.20", ram: 1)).is_empty());
    assert!(errors_of(quote!(image: name, ram: 1)).is_empty());
    // With an image, args alone are the entrypoint's arguments.
    assert!(errors_of(quote!(image: "alpine", ram: 1, args: ["-c", "x"])).is_empty());
    for reference in [
        "Alpine",
        "a:b:c",
        "a@sha256:00",
        "",
        "localhost:5000/x:y",
        "ghcr.io/o/a",
    ] {
        let errors = errors_of(quote!(image: #reference, ram: 1));
        let runtime = monocore_rules::parse_image_ref(reference);
        assert_eq!(
            errors.is_empty(),
            runtime.is_ok(),
            "{reference}: {errors:?}"
        );
        if let Err(e) = runtime {
            assert_eq!(errors, [e.to_string()]);
        }
    }
    let errors = errors_of(quote!(image: "a", root: "r", ram: 1));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("`image` and `root` are alternatives"));
    let errors = errors_of(quote!(image: "a", image: "b", ram: 1));
    assert!(errors[0].starts_with("duplicate key `image`"), "{errors:?}");
    let errors = errors_of(quote!(image: ["a"], ram: 1));
    assert!(errors[0].contains("`image`"), "{errors:?}");
}

#[test]
fn net_and_allow_are_read_and_checked_as_at_run_time() {
    assert!(
        errors_of(
            quote!(root: "r", ram: 1, net: true, allow: ["127.0.0.1:5432", "pypi.org:443"], port_map: ["8080:80"])
        )
        .is_empty()
    );
    // Values known at run time only: nothing to say yet.
    assert!(errors_of(quote!(root: "r", ram: 1, net: n, allow: ["pypi.org:443"])).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, allow: entries)).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, net: true, local_only: l)).is_empty());
    assert!(errors_of(quote!(root: "r", ram: 1, net: true, allow: [entry, entry])).is_empty());

    // Each entry parses as `AllowEntry::from_str` parses it.
    for entry in [
        "example.com",
        "[::1]:80",
        "10.1.2.3/16:22",
        "127.0.0.2:80",
        "",
    ] {
        let errors = errors_of(quote!(root: "r", ram: 1, net: true, allow: [#entry]));
        let runtime = monocore_rules::egress::parse_egress_rule(entry).unwrap_err();
        assert_eq!(errors, [runtime.to_string()], "{entry}");
    }

    let errors = errors_of(quote!(root: "r", ram: 1, allow: ["pypi.org:443"]));
    assert_eq!(
        errors,
        [
            "allow-list entry pypi.org:443 needs `net`, which is off: without it the guest has no network interface, and the allow-list opens nothing; set `net` to true"
        ]
    );
    let errors = errors_of(quote!(root: "r", ram: 1, net: true, local_only: false));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("`net` and TSI exclude each other"),
        "{errors:?}"
    );
    assert_eq!(errors[1], "TSI is turned on here");
    let errors = errors_of(
        quote!(root: "r", ram: 1, net: true, allow: ["pypi.org:443", "x.org:1", "PyPI.org.:443"]),
    );
    assert_eq!(
        errors,
        [
            "allow-list entry pypi.org:443 is listed twice: each entry may be listed once",
            "pypi.org:443 is first listed here",
        ]
    );
    // A port map is published by `net` as by TSI.
    let errors = errors_of(quote!(root: "r", ram: 1, net: false, port_map: ["8080:80"]));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("port mapping 8080:80 needs networking"),
        "{errors:?}"
    );
    let errors = errors_of(quote!(root: "r", ram: 1, net: "true"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("wrong type for `net`"), "{errors:?}");
}
