//! The error collector (serde_derive's `Ctxt`): every error is kept, on its
//! token, and they are combined into one `syn::Error` at the end, so one
//! build shows every mistake.

use std::fmt::Display;

use monocore_rules::RuleError;
use proc_macro2::Span;
use quote::ToTokens;

/// Every error recorded so far.
#[derive(Default)]
pub struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records an error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error spanning `tokens`.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// `Err` with every recorded error, or `Ok(value)` if there were none.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// The message for a rule error: the rule's wording (the same text
/// `MicroVmConfig::validate` shows at run time), then its fix.
pub fn message(error: &RuleError) -> String {
    match error.fix() {
        Some(fix) => format!("{error}; {fix}"),
        None => error.to_string(),
    }
}
