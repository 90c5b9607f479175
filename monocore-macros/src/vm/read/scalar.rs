//! Single values: strings, numbers (in range), booleans, the log level,
//! the IP address and the image reference.

use monocore_rules::keys::closest;
use monocore_rules::{LOG_LEVEL_NAMES, log_level_number, parse_ipv4};
use syn::{Expr, Ident, LitBool, LitInt};

use super::shape::{Shape, shape, wrong_type};
use crate::vm::errors::Errors;
use crate::vm::model::{IpLit, StrLit, Value};

/// The key of an OCI image, `vm!`'s alternative to `root`.
pub const IMAGE_KEY: &str = "image";

/// An `image` value: a string literal that parses as an image reference
/// (with the parser the library uses at run time), or an expression.
pub fn image_ref(errors: &mut Errors, value: Expr) -> Option<Value<StrLit>> {
    let checked = string(errors, IMAGE_KEY, value)?;
    if let Value::Lit(lit) = &checked
        && let Err(e) = monocore_rules::parse_image_ref(&lit.text)
    {
        errors.spanned(&lit.lit, e);
        return None;
    }
    Some(checked)
}

pub fn string(errors: &mut Errors, key: &str, value: Expr) -> Option<Value<StrLit>> {
    match shape(&value) {
        Shape::Str(lit) => Some(Value::Lit(StrLit::new(lit))),
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Array(_) => {
            wrong_type(
                errors,
                &value,
                key,
                "a string",
                ": give one string, not a list",
            );
            None
        }
        _ => {
            wrong_type(
                errors,
                &value,
                key,
                "a string",
                ": put the value in double quotes",
            );
            None
        }
    }
}

pub fn integer<T>(
    errors: &mut Errors,
    key: &str,
    value: Expr,
    expected: &str,
    rule: fn(i128) -> Result<T, monocore_rules::RangeError>,
) -> Option<Value<LitInt>> {
    match shape(&value) {
        Shape::Int(lit) => {
            let checked = lit
                .base10_parse::<i128>()
                .map_err(|e| e.to_string())
                .and_then(|n| rule(n).map_err(|e| e.to_string()));
            match checked {
                Ok(_) => Some(Value::Lit(lit.clone())),
                Err(message) => {
                    errors.spanned(lit, message);
                    None
                }
            }
        }
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) => {
            let text = lit.value();
            let hint = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                format!(": write `{text}` without quotes")
            } else {
                String::new()
            };
            wrong_type(errors, &value, key, expected, &hint);
            None
        }
        Shape::NegInt => {
            wrong_type(errors, &value, key, expected, ": it must be at least 1");
            None
        }
        _ => {
            wrong_type(errors, &value, key, expected, "");
            None
        }
    }
}

pub fn boolean(errors: &mut Errors, key: &str, value: Expr) -> Option<Value<LitBool>> {
    match shape(&value) {
        Shape::Bool(lit) => Some(Value::Lit(lit.clone())),
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) if matches!(lit.value().as_str(), "true" | "false") => {
            let hint = format!(": write `{}` without quotes", lit.value());
            wrong_type(errors, &value, key, "`true` or `false`", &hint);
            None
        }
        _ => {
            wrong_type(errors, &value, key, "`true` or `false`", "");
            None
        }
    }
}

/// The `LogLevel` variant name of a level number (`3` → `Info`).
fn level_variant(number: u32) -> Option<String> {
    let name = LOG_LEVEL_NAMES.get(usize::try_from(number).ok()?)?;
    let mut chars = name.chars();
    let first = chars.next()?;
    Some(first.to_ascii_uppercase().to_string() + chars.as_str())
}

fn level_variants() -> String {
    let all: Vec<String> = (0..6u32)
        .filter_map(level_variant)
        .map(|v| format!("`{v}`"))
        .collect();
    all.join(", ")
}

pub fn log_level(errors: &mut Errors, value: Expr) -> Option<Value<Ident>> {
    let key = "log_level";
    if let Expr::Path(path) = &value
        && path.qself.is_none()
        && let Some(ident) = path.path.get_ident()
    {
        let name = ident.to_string();
        // A capitalized identifier names a level; a lowercase one is a
        // variable, whose value is checked by its type.
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return match log_level_number(&name).and_then(level_variant) {
                Some(variant) => Some(Value::Lit(Ident::new(&variant, ident.span()))),
                None => {
                    let variants: Vec<String> = (0..6u32).filter_map(level_variant).collect();
                    let hint = closest(&name, variants.iter().map(String::as_str))
                        .map(|v| format!(": did you mean `{v}`?"))
                        .unwrap_or_else(|| format!(": expected one of {}", level_variants()));
                    errors.spanned(ident, format!("unknown log level `{name}`{hint}"));
                    None
                }
            };
        }
        return Some(Value::Expr(value));
    }
    match shape(&value) {
        Shape::Expr => Some(Value::Expr(value)),
        Shape::Str(lit) => {
            let hint = match log_level_number(&lit.value()).and_then(level_variant) {
                Some(variant) => format!(": write `{variant}` without quotes"),
                None => format!(": one of {}", level_variants()),
            };
            wrong_type(errors, &value, key, "an identifier such as `Info`", &hint);
            None
        }
        _ => {
            let hint = format!(": one of {}", level_variants());
            wrong_type(errors, &value, key, "an identifier such as `Info`", &hint);
            None
        }
    }
}

pub fn ip(errors: &mut Errors, value: Expr) -> Option<Value<IpLit>> {
    match shape(&value) {
        // The rule the TOML loader and the command line use too.
        Shape::Str(lit) => match parse_ipv4(&lit.value()) {
            Ok(addr) => Some(Value::Lit(IpLit {
                span: lit.span(),
                octets: addr.octets(),
            })),
            Err(e) => {
                errors.spanned(lit, e);
                None
            }
        },
        Shape::Expr => Some(Value::Expr(value)),
        _ => {
            wrong_type(
                errors,
                &value,
                "ip",
                "an IPv4 address string such as \"10.0.0.2\"",
                "",
            );
            None
        }
    }
}
