//! Reads a `#[derive(TypestateBuilder)]` input into a [`BuilderInput`],
//! checking every `#[builder(..)]` attribute. All errors are collected and
//! reported together, each on the tokens at fault.

use proc_macro2::Span;
use syn::{
    Attribute, Data, DeriveInput, Expr, Fields, GenericArgument, Ident, Path, PathArguments, Type,
    Visibility, meta::ParseNestedMeta, spanned::Spanned,
};

/// The struct the builder is derived for.
pub(crate) struct BuilderInput {
    /// The struct's name (`MicroVmConfig`).
    pub ident: Ident,
    /// The struct's visibility, which the builder and its setters share.
    pub vis: Visibility,
    /// Every field, in declaration order.
    pub fields: Vec<FieldInput>,
    /// `#[builder(wrapper(..))]`, if given.
    pub wrapper: Option<Wrapper>,
}

/// One field of the struct.
pub(crate) struct FieldInput {
    pub ident: Ident,
    pub ty: Type,
    /// The field's `#[doc]` attributes, copied onto its setters.
    pub docs: Vec<Attribute>,
    pub kind: FieldKind,
    /// `#[builder(into)]`: the setter takes `impl Into<T>`.
    pub into: bool,
    pub shape: Shape,
}

/// Whether a field must be set.
pub(crate) enum FieldKind {
    /// `#[builder(required)]`: tracked by a type parameter.
    Required,
    /// Optional, with `#[builder(default = expr)]` or `Default::default()`.
    Optional { default: Option<Expr> },
}

/// What the setter takes, read from the field's type.
pub(crate) enum Shape {
    /// `Vec<T>`: the setter takes an iterator of `T`.
    Vec(Type),
    /// `Option<T>`: the setter takes a `T` and stores `Some`.
    Option(Type),
    /// Anything else: the setter takes the field type itself.
    Plain,
}

/// `#[builder(wrapper(name = .., target = .., build_with = .., output = ..))]`.
pub(crate) struct Wrapper {
    /// The wrapper builder's name (`MicroVmBuilder`).
    pub name: Ident,
    /// The type that gets `builder()` (`MicroVm`).
    pub target: Type,
    /// The function that turns the built struct into `output`.
    pub build_with: Path,
    /// What the wrapper's `build()` returns.
    pub output: Type,
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// All errors so far, ending with `error`.
    fn fail(self, error: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut all) => {
                all.combine(error);
                all
            }
            None => error,
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// Remembers where a key was first given, so a repeat can point at both.
fn once<T>(
    errors: &mut Errors,
    slot: &mut Option<(Span, T)>,
    meta: &ParseNestedMeta<'_>,
    value: T,
) {
    let key = meta
        .path
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_default();
    match slot {
        Some((first, _)) => {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format!("duplicate builder attribute `{key}`"),
            ));
            errors.push(syn::Error::new(*first, format!("`{key}` first given here")));
        }
        None => *slot = Some((meta.path.span(), value)),
    }
}

impl BuilderInput {
    pub(crate) fn from_derive(input: &DeriveInput) -> syn::Result<Self> {
        let mut errors = Errors::default();

        if let Some(param) = input.generics.params.first() {
            errors.push(syn::Error::new_spanned(
                param,
                "TypestateBuilder does not support generic structs: \
                 remove the type, lifetime and const parameters",
            ));
        }

        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named),
                Fields::Unnamed(_) | Fields::Unit => None,
            },
            Data::Enum(_) | Data::Union(_) => None,
        };
        let Some(named) = named else {
            return Err(errors.fail(syn::Error::new_spanned(
                &input.ident,
                "TypestateBuilder needs a struct with named fields",
            )));
        };

        let wrapper = parse_struct_attrs(&input.attrs, &mut errors);
        let fields = named
            .named
            .iter()
            .filter_map(|field| parse_field(field, &mut errors))
            .collect();

        errors.finish(Self {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            fields,
            wrapper,
        })
    }
}

fn parse_struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> Option<Wrapper> {
    let mut wrapper = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("builder")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("wrapper") {
                let parsed = parse_wrapper(&meta, errors)?;
                once(errors, &mut wrapper, &meta, parsed);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown builder attribute: on a struct, the only one is \
                     `wrapper(name = .., target = .., build_with = .., output = ..)`",
                ))
            }
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    wrapper.and_then(|(_, w)| w)
}

fn parse_wrapper(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Option<Wrapper>> {
    let mut name = None;
    let mut target = None;
    let mut build_with = None;
    let mut output = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("name") {
            let value: Ident = inner.value()?.parse()?;
            once(errors, &mut name, &inner, value);
        } else if inner.path.is_ident("target") {
            let value: Type = inner.value()?.parse()?;
            once(errors, &mut target, &inner, value);
        } else if inner.path.is_ident("build_with") {
            let value: Path = inner.value()?.parse()?;
            once(errors, &mut build_with, &inner, value);
        } else if inner.path.is_ident("output") {
            let value: Type = inner.value()?.parse()?;
            once(errors, &mut output, &inner, value);
        } else {
            return Err(inner.error(
                "unknown wrapper key: expected `name`, `target`, `build_with` or `output`",
            ));
        }
        Ok(())
    })?;

    let mut missing = Vec::new();
    for (key, given) in [
        ("name", name.is_some()),
        ("target", target.is_some()),
        ("build_with", build_with.is_some()),
        ("output", output.is_some()),
    ] {
        if !given {
            missing.push(format!("`{key}`"));
        }
    }
    match (name, target, build_with, output) {
        (Some((_, name)), Some((_, target)), Some((_, build_with)), Some((_, output))) => {
            Ok(Some(Wrapper {
                name,
                target,
                build_with,
                output,
            }))
        }
        _ => {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                format!("wrapper is missing {}", missing.join(", ")),
            ));
            Ok(None)
        }
    }
}

fn parse_field(field: &syn::Field, errors: &mut Errors) -> Option<FieldInput> {
    let Some(ident) = field.ident.clone() else {
        errors.push(syn::Error::new_spanned(field, "field has no name"));
        return None;
    };

    let mut required: Option<(Span, ())> = None;
    let mut default: Option<(Span, Expr)> = None;
    let mut into: Option<(Span, ())> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("builder")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("required") {
                once(errors, &mut required, &meta, ());
            } else if meta.path.is_ident("default") {
                let value: Expr = meta.value()?.parse()?;
                once(errors, &mut default, &meta, value);
            } else if meta.path.is_ident("into") {
                once(errors, &mut into, &meta, ());
            } else {
                return Err(meta.error(
                    "unknown builder attribute: on a field, expected `required`, \
                     `default = expr` or `into`",
                ));
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }

    let kind = match (required, default) {
        (Some((required, ())), Some((default, _))) => {
            errors.push(syn::Error::new(
                default,
                format!(
                    "field `{ident}` is `required`, so it cannot have a `default`: \
                     remove one of the two"
                ),
            ));
            errors.push(syn::Error::new(required, "`required` given here"));
            FieldKind::Required
        }
        (Some(_), None) => FieldKind::Required,
        (None, default) => FieldKind::Optional {
            default: default.map(|(_, expr)| expr),
        },
    };

    Some(FieldInput {
        shape: shape_of(&field.ty),
        ident,
        ty: field.ty.clone(),
        docs: field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
        kind,
        into: into.is_some(),
    })
}

/// `Vec<T>` and `Option<T>` (by their last path segment) get collection and
/// optional setters; every other type is taken as is.
fn shape_of(ty: &Type) -> Shape {
    let Type::Path(path) = ty else {
        return Shape::Plain;
    };
    if path.qself.is_some() {
        return Shape::Plain;
    }
    let Some(last) = path.path.segments.last() else {
        return Shape::Plain;
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Shape::Plain;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let (Some(inner), None, 1) = (types.next(), types.next(), args.args.len()) else {
        return Shape::Plain;
    };
    if last.ident == "Vec" {
        Shape::Vec(inner.clone())
    } else if last.ident == "Option" {
        Shape::Option(inner.clone())
    } else {
        Shape::Plain
    }
}

#[cfg(test)]
mod tests {
    use syn::{DeriveInput, parse_quote};

    use super::{BuilderInput, FieldKind, Shape};

    fn errors_of(input: DeriveInput) -> Vec<String> {
        match BuilderInput::from_derive(&input) {
            Ok(_) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn reads_required_default_into_and_shapes() {
        let input: DeriveInput = parse_quote! {
            pub struct Config {
                /// The root.
                #[builder(required, into)]
                root: std::path::PathBuf,
                #[builder(default = 7)]
                count: u8,
                #[builder(into)]
                args: Vec<String>,
                exec: Option<String>,
            }
        };
        let model = BuilderInput::from_derive(&input).unwrap();
        let [root, count, args, exec] = model.fields.as_slice() else {
            panic!("expected four fields");
        };
        assert!(matches!(root.kind, FieldKind::Required));
        assert!(root.into && matches!(root.shape, Shape::Plain));
        assert_eq!(root.docs.len(), 1);
        assert!(matches!(
            count.kind,
            FieldKind::Optional { default: Some(_) }
        ));
        assert!(args.into && matches!(args.shape, Shape::Vec(_)));
        assert!(!exec.into && matches!(exec.shape, Shape::Option(_)));
        assert!(model.wrapper.is_none());
    }

    #[test]
    fn every_attribute_error_is_reported_at_once() {
        let errors = errors_of(parse_quote! {
            struct Config {
                #[builder(required, default = 1)]
                a: u32,
                #[builder(requird)]
                b: u32,
                #[builder(into, into)]
                c: String,
            }
        });
        assert_eq!(
            errors,
            [
                "field `a` is `required`, so it cannot have a `default`: remove one of the two",
                "`required` given here",
                "unknown builder attribute: on a field, expected `required`, `default = expr` or `into`",
                "duplicate builder attribute `into`",
                "`into` first given here",
            ]
        );
    }

    #[test]
    fn rejects_generics_tuple_structs_and_enums() {
        assert_eq!(
            errors_of(parse_quote!(
                struct Config<T> {
                    a: T,
                }
            )),
            [
                "TypestateBuilder does not support generic structs: remove the type, lifetime and const parameters"
            ]
        );
        assert_eq!(
            errors_of(parse_quote!(
                struct Config(u32);
            )),
            ["TypestateBuilder needs a struct with named fields"]
        );
        assert_eq!(
            errors_of(parse_quote!(
                enum Config {
                    A,
                }
            )),
            ["TypestateBuilder needs a struct with named fields"]
        );
    }

    #[test]
    fn wrapper_needs_all_four_keys() {
        let errors = errors_of(parse_quote! {
            #[builder(wrapper(name = VmBuilder, target = Vm))]
            struct Config { a: u32 }
        });
        assert_eq!(errors, ["wrapper is missing `build_with`, `output`"]);

        let input: DeriveInput = parse_quote! {
            #[builder(wrapper(name = VmBuilder, target = Vm, build_with = Vm::new, output = Result<Vm, E>))]
            struct Config { a: u32 }
        };
        let wrapper = BuilderInput::from_derive(&input).unwrap().wrapper.unwrap();
        assert_eq!(wrapper.name, "VmBuilder");
    }
}
