//! The pure rules of monocore: how each string form parses, and what makes a
//! microVM configuration valid, which is to say runnable: every rule that
//! libkrun 1.19.7, the guest agent or the guest's `execve` would otherwise
//! enforce late (with an `EINVAL` from `krun_start_enter`, a panic, or a
//! command that silently never runs) is a rule here, with one typed error
//! ([`RuleError`]) and one wording, reported at a [`ConfigPath`].
//!
//! What only the host can tell (does the root exist, how much memory can the
//! host give, which kernel does it boot) is not a rule here: monocore checks
//! those up front, before the VMM starts.
//!
//! # Why a separate crate
//!
//! The same rules run in two places:
//!
//! * at run time, in `monocore`'s `MicroVmConfig::validate` (which the TOML
//!   loader and the command line run too) and in the `FromStr` impls of its
//!   pair types;
//! * at compile time, in the `vm!` macro of `monocore-macros`, which checks
//!   literal values before the program is built.
//!
//! A proc-macro crate cannot depend on `monocore` (which depends on it), so the
//! rules live here, in a small dependency-free crate that both use. A shared
//! crate was chosen over `#[path]`-including one file from both crates because
//! it publishes cleanly to crates.io, is compiled and tested once, and can be
//! fuzzed and property-tested on its own. There is exactly one copy of each
//! rule, and one orchestration of them all ([`check_config`], over a
//! [`ConfigView`] in which each value is known or not until run time): if a
//! rule, or when it applies, changes here, both the macro and the run-time
//! validator change with it.
//!
//! Nothing in this crate does I/O, allocates more than its output, or panics.

pub mod command;
pub mod config;
pub mod egress;
pub mod error;
pub mod guest_path;
pub mod image_ref;
pub mod keys;
pub mod limits;
pub mod lists;
pub mod location;
pub mod pair;
pub mod rlimit;
pub mod value;

pub use command::{
    DEFAULT_EXEC, GuestStringError, check_arg, check_args_have_exec, check_command_size, check_env,
    check_exec, command_field,
};
pub use config::{ConfigView, Known, KnownList, check_config, known_list};
pub use error::{Fix, RuleError};
pub use guest_path::{
    GuestPathError, find_overlap, normalize_guest_path, normalize_mount_point, paths_overlap,
};
pub use image_ref::{ImageRefError, ImageRefErrorKind, ImageReference, parse_image_ref};
pub use lists::{
    check_allow, check_allow_needs_net, check_ip, check_len, check_len_either_way,
    check_mapped_dirs, check_net_with_tsi, check_networking, check_port_map, check_rlimits,
    max_len, stack_soft_limit,
};
pub use location::{ConfigPath, Field};
pub use pair::{
    EnvPairError, EnvPairErrorKind, PathPairError, PathPairErrorKind, PortPairError,
    PortPairErrorKind, check_env_name, check_path_pair_parts, parse_env_pair, parse_path_pair,
    parse_port_pair,
};
pub use rlimit::{
    RLIMIT_NAMES, RlimitError, RlimitErrorKind, check_soft_hard, parse_rlimit, rlimit_name,
    rlimit_resource,
};
pub use value::{
    HostPathError, Ipv4Error, LOG_LEVEL_NAMES, RangeError, check_host_path, check_num_vcpus,
    check_ram_mib, check_root_path, find_duplicates, log_level_number, parse_ipv4,
};
