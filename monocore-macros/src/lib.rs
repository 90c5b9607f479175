//! Procedural macros for monocore.
//!
//! This file stays thin: each macro's parsing, checking and expansion live
//! in their own modules, over `proc_macro2` types only (`vm!`: `parse`,
//! `read`, `check`, `expand`; the derive: `parse`, `expand`).
//!
//! - [`TypestateBuilder`]: derives a compile-time-checked typestate builder.
//! - [`vm!`]: a microVM config whose literals are checked at compile time.

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

mod builder;
mod vm;

/// Derives a typestate builder for a struct with named fields.
///
/// For a struct `X`, the derive generates:
///
/// - `XBuilder<F1, F2, …>`, with one type parameter per required field, that
///   starts as `Unset<members::f1>` and becomes `Set<members::f1>` once the
///   field's setter has been called;
/// - `X::builder()` (and `XBuilder::default()`), the builder in its initial
///   state, every optional field at its default;
/// - one setter per field, named after it, carrying the field's docs;
/// - `build()`, which exists only when every required field is set, and
///   returns `X`;
/// - a module `x_builder` with the state types, the field markers and the
///   sealed traits whose `#[diagnostic::on_unimplemented]` messages name the
///   field: "missing required field `f1`: call `.f1(..)` before `.build()`"
///   and "required field `f1` is already set".
///
/// # Field attributes
///
/// - `#[builder(required)]`: the field must be set exactly once before
///   `build()`.
/// - `#[builder(default = expr)]`: the default of an optional field (without
///   it, `Default::default()`).
/// - `#[builder(into)]`: the setter takes `impl Into<T>` instead of `T`.
///
/// The setter's shape follows the field type: a `Vec<T>` field takes
/// `impl IntoIterator<Item = T>` (with `into`: `Item = impl Into<T>`) and
/// replaces the vector; an `Option<T>` field takes `T` (or `impl Into<T>`)
/// and stores `Some`.
///
/// # Struct attribute
///
/// `#[builder(wrapper(name = YBuilder, target = Y, build_with = path, output = Type))]`
/// also generates `YBuilder<…>` with the same type parameters and setters
/// (it wraps `XBuilder`), `Y::builder()`, and a `build()` that returns
/// `path(x)` of type `Type`: a builder for a type that is made from `X`,
/// for example after validation.
#[proc_macro_derive(TypestateBuilder, attributes(builder))]
pub fn derive_typestate_builder(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    builder::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Writes a `monocore::vm::MicroVmConfig` whose literal values are checked at
/// compile time.
///
/// Use it as `monocore::vm!`:
///
/// ```
/// use monocore::vm;
///
/// let config = vm! {
///     root: "./rootfs",
///     ram: 1024,
///     exec: "/bin/echo",
///     args: ["Hello", "from a microVM"],
/// };
/// assert_eq!(config.ram_mib, 1024);
/// assert_eq!(config.args, ["Hello", "from a microVM"]);
/// ```
///
/// `vm!(…)` and `vm![…]` work as well. Inside the delimiters the pairs may be
/// wrapped in `<` … `>`, which reads like monocore's design card.
/// `vm!<…>` itself cannot be written: Rust's grammar requires a macro call
/// to open with `(`, `[` or `{`.
///
/// ```
/// let config = monocore::vm!(<root: "./rootfs", ram: 512>);
/// assert_eq!(config, monocore::vm::MicroVmConfig::new("./rootfs", 512));
/// ```
///
/// # Keys
///
/// `root` and `ram` are required; a key not given keeps the default of
/// `MicroVmConfig::new`. A trailing comma is allowed.
///
/// | key | field | literal form | an expression must be |
/// |---|---|---|---|
/// | `root` | `root_path` | `"./rootfs"` | `Into<PathBuf>` |
/// | `ram` | `ram_mib` | `1024` (1 to `u32::MAX`) | `u32` |
/// | `vcpus` | `num_vcpus` | `2` (1 to 128 on x86_64, 255 elsewhere) | `u8` |
/// | `exec` | `exec_path` | `"/bin/echo"` | `Into<Utf8UnixPathBuf>` |
/// | `args` | `args` | `["a", "b"]` | `IntoIterator<Item: Into<String>>` |
/// | `env` | `env` | `["K=V"]` | `IntoIterator<Item = EnvPair>` |
/// | `workdir` | `workdir_path` | `"/app"` | `Into<Utf8UnixPathBuf>` |
/// | `mapped_dirs` | `mapped_dirs` | `["./data:/data"]` | `IntoIterator<Item = PathPair>` |
/// | `port_map` | `port_map` | `["8080:80"]` | `IntoIterator<Item = PortPair>` |
/// | `net` | `net` | `true` | `bool` |
/// | `allow` | `allow` | `["127.0.0.1:5432", "pypi.org:443", "10.1.0.0/16:22"]` | `IntoIterator<Item = AllowEntry>` |
/// | `rlimits` | `rlimits` | `["RLIMIT_NOFILE=1024:2048"]` | `IntoIterator<Item = LinuxRlimit>` |
/// | `console` | `console_output` | `"./console.log"` | `Into<Utf8UnixPathBuf>` |
/// | `ip` | `assigned_ip` | `"10.0.0.2"` | `Into<Ipv4Addr>` |
/// | `local_only` | `local_only` | `false` | `bool` |
/// | `log_level` | `log_level` | `Info` (`Off`, `Error`, `Warn`, `Info`, `Debug`, `Trace`) | `LogLevel` |
///
/// An element of a list literal may itself be an expression of the element
/// type (`args: ["-c", script]`). For `log_level`, a capitalized identifier
/// names a level; a lowercase identifier or a path is an expression.
///
/// # Compile-time checks
///
/// A literal is checked by the same `monocore_rules` functions that
/// `MicroVmConfig::validate` runs, and the error points at the token at
/// fault. Every error is reported at once:
///
/// * `root` and `ram` are present; keys are known (with a "did you mean"
///   suggestion) and given once;
/// * each value has the right shape (a number where a number belongs, a list
///   where a list belongs), and each list element's string form parses (path
///   pairs, port pairs, `NAME=value`, rlimits, allow-list entries: IPv4
///   only), as does an `ip` or `image`;
/// * then every rule `MicroVmConfig::validate` applies, through the same
///   call (`monocore_rules::check_config`), over what the literals tell:
///   `ram` 1 to `u32::MAX`, `vcpus` 1 to 128 on x86_64 (255 elsewhere);
///   strings (`exec`, `args`, `env`) hold no NUL and fit `execve`, and
///   literal `args` come with an `exec` (without one they would never run);
///   guest paths are absolute, without `..` above `/`, and no two mapped
///   directories overlap; no port 0, no host or guest port or rlimit
///   resource twice, soft ≤ hard; no more list entries than libkrun takes;
///   a port map needs networking (`net: true`, or TSI: `local_only:
///   false`); an allow-list needs `net: true`, each entry once; `net` and
///   TSI exclude each other; `ip` cannot be set (libkrun cannot). A rule
///   that needs a value given as an expression is checked
///   at run time, unless the literals alone already break it.
///
/// ```compile_fail
/// let config = monocore::vm! { root: "./rootfs", ram: 0 }; // ram must be at least 1
/// ```
///
/// ```compile_fail
/// let config = monocore::vm! { root: "./rootfs", ram: 512, port_map: ["8080:80:90"] };
/// ```
///
/// # Expressions
///
/// Any value may be an expression instead of a literal. Its type is checked
/// by rustc and its value at run time, by `MicroVm::from_config`:
///
/// ```
/// use monocore::{vm, config::PortPair};
///
/// let ram = 256 * 4;
/// let ports = vec![PortPair::with_same(443)];
/// let config = vm! { root: std::env::temp_dir(), ram: ram, port_map: ports, exec: "/bin/sh", args: ["-c", &ram.to_string()] };
/// assert_eq!(config.ram_mib, 1024);
/// assert_eq!(config.port_map, [PortPair::with_same(443)]);
/// ```
///
/// A literal expands to the value it stands for, with no parsing left for
/// run time: `"8080:80"` in `port_map` becomes
/// `PortPair::with_distinct(8080, 80)`, and `"pypi.org:443"` in `allow` an
/// `AllowEntry` made from the parsed `EgressRule`.
///
/// ```
/// use monocore::{vm, config::AllowEntry};
///
/// let config = vm! {
///     root: "./rootfs",
///     ram: 512,
///     net: true,
///     allow: ["127.0.0.1:5432", "PyPI.org:443"],
///     port_map: ["8080:80"], // the host's 127.0.0.1:8080
/// };
/// let allow: Vec<String> = config.allow.iter().map(AllowEntry::to_string).collect();
/// assert_eq!(allow, ["127.0.0.1:5432", "pypi.org:443"]);
/// ```
#[proc_macro]
pub fn vm(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    vm::vm(input.into()).into()
}
