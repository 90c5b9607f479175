//! What kind of value an expression is, as far as the macro can tell, and
//! the error for a value of the wrong kind.

use syn::{Expr, ExprArray, Lit, LitBool, LitInt, LitStr, UnOp};

use crate::vm::errors::Errors;

/// What kind of value an expression is, as far as the macro can tell.
pub enum Shape<'a> {
    Str(&'a LitStr),
    Int(&'a LitInt),
    Bool(&'a LitBool),
    /// A negative integer literal (`-1`).
    NegInt,
    /// Any other literal (float, char, byte string …).
    OtherLit(&'static str),
    Array(&'a ExprArray),
    /// Anything else: left to rustc and to run-time validation.
    Expr,
}

pub fn shape(expr: &Expr) -> Shape<'_> {
    match expr {
        // Invisible groups come from `macro_rules!` fragments (`$e:expr`).
        Expr::Group(group) => shape(&group.expr),
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Shape::Str(s),
            Lit::Int(i) => Shape::Int(i),
            Lit::Bool(b) => Shape::Bool(b),
            Lit::Float(_) => Shape::OtherLit("a floating-point number"),
            Lit::Char(_) => Shape::OtherLit("a character"),
            Lit::Byte(_) => Shape::OtherLit("a byte"),
            Lit::ByteStr(_) => Shape::OtherLit("a byte string"),
            Lit::CStr(_) => Shape::OtherLit("a C string"),
            _ => Shape::OtherLit("a literal"),
        },
        Expr::Unary(unary)
            if matches!(unary.op, UnOp::Neg(_))
                && matches!(shape(&unary.expr), Shape::Int(_) | Shape::OtherLit(_)) =>
        {
            Shape::NegInt
        }
        Expr::Array(array) => Shape::Array(array),
        _ => Shape::Expr,
    }
}

fn found(shape: &Shape<'_>) -> &'static str {
    match shape {
        Shape::Str(_) => "a string",
        Shape::Int(_) => "an integer",
        Shape::Bool(_) => "a boolean",
        Shape::NegInt => "a negative number",
        Shape::OtherLit(what) => what,
        Shape::Array(_) => "a list",
        Shape::Expr => "an expression",
    }
}

pub fn wrong_type(errors: &mut Errors, value: &Expr, key: &str, expected: &str, hint: &str) {
    let found = found(&shape(value));
    errors.spanned(
        value,
        format!("wrong type for `{key}`: expected {expected}, found {found}{hint}"),
    );
}
