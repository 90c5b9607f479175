//! List values: an array literal, each element a string literal in the
//! list's string form (read with `monocore_rules`' parsers, as `FromStr`
//! reads it at run time) or an expression; or an expression for the whole
//! list.

use monocore_rules::egress::parse_egress_rule;
use monocore_rules::{
    Field as Key, check_len_either_way, parse_env_pair, parse_path_pair, parse_port_pair,
    parse_rlimit, rlimit_name,
};
use quote::ToTokens;
use syn::{Expr, Ident, LitStr};

use super::shape::{Shape, shape, wrong_type};
use crate::vm::errors::{Errors, message};
use crate::vm::model::{AllowLit, EnvLit, List, PathLit, PortLit, RlimitLit, StrLit, Value};

/// A list value for `field`, each element string read by `element`.
pub fn list<T>(
    errors: &mut Errors,
    field: Key,
    value: Expr,
    element: fn(&LitStr) -> Result<T, String>,
) -> Option<List<T>> {
    let key = field.key();
    let array = match shape(&value) {
        Shape::Array(array) => array,
        Shape::Expr => return Some(List::Expr(value)),
        Shape::Str(lit) => {
            let hint = format!(": put it in brackets, `[{}]`", lit.to_token_stream());
            wrong_type(errors, &value, key, "a list", &hint);
            return None;
        }
        _ => {
            wrong_type(errors, &value, key, "a list", "");
            return None;
        }
    };
    // Bounded cost: a list over the most any config allows is reported,
    // not walked (nor checked again: it is not read).
    let count = array.elems.len();
    if let Err(e) = check_len_either_way(field, count) {
        errors.spanned(array, message(&e));
        return None;
    }
    let mut items = Vec::with_capacity(count);
    for elem in &array.elems {
        match shape(elem) {
            Shape::Str(lit) => match element(lit) {
                Ok(item) => items.push(Value::Lit(item)),
                Err(message) => {
                    errors.spanned(lit, message);
                    items.push(Value::Invalid);
                }
            },
            Shape::Expr => items.push(Value::Expr(elem.clone())),
            _ => {
                wrong_type(
                    errors,
                    elem,
                    key,
                    "a string for each element",
                    ": put the value in double quotes",
                );
                items.push(Value::Invalid);
            }
        }
    }
    Some(List::Items(items))
}

pub fn arg(lit: &LitStr) -> Result<StrLit, String> {
    Ok(StrLit::new(lit))
}

pub fn env(lit: &LitStr) -> Result<EnvLit, String> {
    let text = lit.value();
    let (name, value) = parse_env_pair(&text).map_err(|e| e.to_string())?;
    Ok(EnvLit {
        span: lit.span(),
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

pub fn path_pair(lit: &LitStr) -> Result<PathLit, String> {
    let text = lit.value();
    let (host, guest) = parse_path_pair(&text).map_err(|e| e.to_string())?;
    Ok(PathLit {
        span: lit.span(),
        host: host.to_owned(),
        guest: guest.to_owned(),
    })
}

pub fn port_pair(lit: &LitStr) -> Result<PortLit, String> {
    let (host, guest) = parse_port_pair(&lit.value()).map_err(|e| e.to_string())?;
    Ok(PortLit {
        span: lit.span(),
        host,
        guest,
    })
}

pub fn allow_entry(lit: &LitStr) -> Result<AllowLit, String> {
    let rule = parse_egress_rule(&lit.value()).map_err(|e| e.to_string())?;
    Ok(AllowLit {
        span: lit.span(),
        rule,
    })
}

pub fn rlimit(lit: &LitStr) -> Result<RlimitLit, String> {
    let (resource, soft, hard) = parse_rlimit(&lit.value()).map_err(|e| e.to_string())?;
    let name = rlimit_name(resource).ok_or_else(|| format!("unknown resource {resource}"))?;
    Ok(RlimitLit {
        number: resource,
        resource: Ident::new(name, lit.span()),
        soft,
        hard,
    })
}
