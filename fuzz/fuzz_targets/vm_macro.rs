//! The `vm!` macro's parse, read, check and expand modules (compiled in with
//! `#[path]`), on token streams built from fuzz input.
//!
//! The first byte picks the mode:
//! * raw: the rest is any text, lexed with `proc_macro2` (fallback mode);
//! * literals: a structured input whose every value is a literal.
//!
//! Properties: nothing panics; the macro's output (expansion or error stub)
//! always parses as a `syn::Expr`; an accepted input's expansion does too;
//! and for all-literal input, the macro accepts exactly when the run-time
//! rules (`MicroVmConfig::validate_values` on the same values, each string
//! parsed with its type's `FromStr`) accept.
#![no_main]

use std::str::FromStr;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use monocore_fuzz::{arb::MacroInput, vm};
use proc_macro2::TokenStream;

/// Runs the macro on `tokens`; returns whether it accepted them.
fn run(tokens: TokenStream) -> bool {
    let output = vm::vm(tokens.clone());
    if let Err(e) = syn::parse2::<syn::Expr>(output.clone()) {
        panic!("the macro's output is not an expression ({e}): {output}");
    }
    let checked = syn::parse2::<vm::parse::VmInput>(tokens).and_then(vm::check_input);
    match checked {
        Ok(checked) => {
            let expansion = vm::expand::expand(&checked);
            if let Err(e) = syn::parse2::<syn::Expr>(expansion.clone()) {
                panic!("the expansion is not an expression ({e}): {expansion}");
            }
            true
        }
        Err(_) => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(tokens) = TokenStream::from_str(&text) {
            run(tokens);
        }
        return;
    }
    let Ok(input) = MacroInput::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let rendered = input.render();
    let tokens = match TokenStream::from_str(&rendered.text) {
        Ok(tokens) => tokens,
        Err(e) => panic!("rendered input does not lex ({e}): {}", rendered.text),
    };
    let macro_accepts = run(tokens);
    let runtime_accepts = rendered
        .to_config()
        .is_some_and(|config| config.validate_values().is_ok());
    assert_eq!(
        macro_accepts, runtime_accepts,
        "vm! and the run-time rules disagree on: {}",
        rendered.text
    );
});
