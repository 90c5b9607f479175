//! The rules over a whole config, orchestrated once: [`check_config`]
//! applies every rule of this crate to a [`ConfigView`], each list's length
//! before its items, and returns every error at its [`ConfigPath`].
//!
//! Both front ends call it, so which rule runs on what, and when a rule is
//! skipped, cannot differ between them:
//!
//! * at run time, `monocore`'s `MicroVmConfig::validate` (which the TOML
//!   loader and the command line run too) views the config with every value
//!   known;
//! * at compile time, the `vm!` macro views its input with the literals
//!   known and everything else (an expression, a value it could not read
//!   and already reported, an image's entrypoint) known only at run time.
//!
//! A value not known until run time ([`Known::Later`]) is never reported,
//! and a rule that needs it is broken only if what is known already breaks
//! it: the command's size counts an unknown string as empty and an unknown
//! stack limit as the largest; the port map needs networking only if `net`
//! is known to be false and `local_only` true; the allow-list needs `net`
//! only if `net` is known to be false; `net` and TSI exclude each other only
//! if both are known to be on.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::egress::EgressRule;
use crate::{
    ConfigPath, Field, RuleError, check_allow, check_allow_needs_net, check_arg,
    check_args_have_exec, check_command_size, check_env, check_exec, check_host_path, check_ip,
    check_len, check_len_either_way, check_mapped_dirs, check_net_with_tsi, check_networking,
    check_num_vcpus, check_port_map, check_ram_mib, check_rlimits, check_root_path, command_field,
    normalize_guest_path, stack_soft_limit,
};

/// `local_only` when a config does not say: no TSI.
pub const DEFAULT_LOCAL_ONLY: bool = true;

/// `net` when a config does not say: no network interface.
pub const DEFAULT_NET: bool = false;

/// A value as a front end knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known<T> {
    /// Known now.
    Now(T),
    /// Not known until run time, where it is checked.
    Later,
}

impl<T> Known<T> {
    /// The value, if it is known.
    pub const fn now(&self) -> Option<&T> {
        match self {
            Known::Now(value) => Some(value),
            Known::Later => None,
        }
    }
}

/// A list: wholly unknown (`vm!` given an expression), or known to have its
/// items, each known or not.
pub type KnownList<T> = Known<Vec<Known<T>>>;

/// A list whose every item is known.
pub fn known_list<T>(items: impl IntoIterator<Item = T>) -> KnownList<T> {
    Known::Now(items.into_iter().map(Known::Now).collect())
}

/// An environment entry, `name=value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar<'a> {
    /// The name.
    pub name: &'a str,
    /// The value.
    pub value: &'a str,
}

/// A mapped directory, `host:guest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedDir<'a> {
    /// The host directory.
    pub host: &'a str,
    /// The guest mount point.
    pub guest: &'a str,
}

/// A port mapping, `host:guest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// The host port.
    pub host: u16,
    /// The guest port.
    pub guest: u16,
}

/// A resource limit: its number (see [`crate::rlimit_name`]) and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The resource number.
    pub resource: u32,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// A borrowed view of a whole config, every value known or not (see the
/// [module docs](self)). An optional key not given is `None` (or an empty
/// list): its default, which every rule accepts.
///
/// One field per [`Field`] but `log_level`, which no rule constrains (its
/// type is the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigView<'a> {
    /// `root`: the host directory of the guest's root filesystem.
    pub root: Known<&'a Path>,
    /// `ram`, in MiB, as written (it may not fit the field).
    pub ram: Known<i128>,
    /// `vcpus`, as written.
    pub vcpus: Option<Known<i128>>,
    /// `exec`.
    pub exec: Option<Known<&'a str>>,
    /// `args`.
    pub args: KnownList<&'a str>,
    /// `env`.
    pub env: KnownList<EnvVar<'a>>,
    /// `workdir`.
    pub workdir: Option<Known<&'a str>>,
    /// `mapped_dirs`.
    pub mapped_dirs: KnownList<MappedDir<'a>>,
    /// `port_map`.
    pub port_map: KnownList<PortMapping>,
    /// `net` (default [`DEFAULT_NET`]).
    pub net: Known<bool>,
    /// `allow`: each entry parsed (a string that does not parse is no
    /// entry: its front end reports it).
    pub allow: KnownList<&'a EgressRule>,
    /// `rlimits`.
    pub rlimits: KnownList<Rlimit>,
    /// `console`.
    pub console: Option<Known<&'a str>>,
    /// `ip`.
    pub ip: Option<Known<Ipv4Addr>>,
    /// `local_only` (default [`DEFAULT_LOCAL_ONLY`]).
    pub local_only: Known<bool>,
}

impl<'a> ConfigView<'a> {
    /// The two required values, every other key not given.
    pub fn new(root: Known<&'a Path>, ram: Known<i128>) -> Self {
        Self {
            root,
            ram,
            vcpus: None,
            exec: None,
            args: Known::Now(Vec::new()),
            env: Known::Now(Vec::new()),
            workdir: None,
            mapped_dirs: Known::Now(Vec::new()),
            port_map: Known::Now(Vec::new()),
            net: Known::Now(DEFAULT_NET),
            allow: Known::Now(Vec::new()),
            rlimits: Known::Now(Vec::new()),
            console: None,
            ip: None,
            local_only: Known::Now(DEFAULT_LOCAL_ONLY),
        }
    }
}

/// Every rule error in `view`, in field order (then index order; a place's
/// errors in the order their rules run), each at its [`ConfigPath`]. Empty
/// means nothing known breaks a rule.
///
/// A list over its length limit is reported as a whole and not walked, so
/// the cost is bounded whatever the config holds. An error about one item
/// that depends on an earlier one (an overlap, a duplicate) says which in
/// its own fields (`first_index`), so a front end can point there too.
///
/// ```
/// use std::path::Path;
/// use monocore_rules::config::{check_config, ConfigView, Known, PortMapping};
/// use monocore_rules::{Field, RuleError};
///
/// let mut view = ConfigView::new(Known::Now(Path::new("/srv/rootfs")), Known::Later);
/// view.local_only = Known::Now(false);
/// let mapping = |host, guest| Known::Now(PortMapping { host, guest });
/// view.port_map = Known::Now(vec![mapping(8080, 80), Known::Later, mapping(8080, 81)]);
/// let errors = check_config(&view);
/// assert_eq!(errors, [(
///     Field::PortMap.at(2),
///     RuleError::DuplicateHostPort { port: 8080, first_index: 0 },
/// )]);
/// ```
pub fn check_config(view: &ConfigView<'_>) -> Vec<(ConfigPath, RuleError)> {
    let mut found = Found::default();
    scalars(view, &mut found);
    let within = Within::check(view, &mut found);
    if within.args {
        for (i, arg) in known_items(&view.args) {
            found.check(Field::Args.at(i), check_arg(arg));
        }
    }
    if within.env {
        for (i, var) in known_items(&view.env) {
            found.check(Field::Env.at(i), check_env(var.name, var.value));
        }
    }
    if within.args && within.env && within.rlimits {
        command_size(view, &mut found);
    }
    if within.mapped_dirs {
        let dirs: Vec<(usize, &str, &str)> = known_items(&view.mapped_dirs)
            .map(|(i, d)| (i, d.host, d.guest))
            .collect();
        found.list(Field::MappedDirs, check_mapped_dirs(&dirs));
    }
    if within.port_map {
        port_map(view, &mut found);
    }
    if within.allow {
        allow(view, &mut found);
    }
    if within.rlimits {
        let limits: Vec<(usize, u32, u64, u64)> = known_items(&view.rlimits)
            .map(|(i, l)| (i, l.resource, l.soft, l.hard))
            .collect();
        found.list(Field::Rlimits, check_rlimits(&limits));
    }
    let mut errors = found.0;
    errors.sort_by_key(|(at, _)| *at);
    errors
}

/// The errors found so far, in the order found.
#[derive(Default)]
struct Found(Vec<(ConfigPath, RuleError)>);

impl Found {
    fn check(&mut self, at: ConfigPath, result: Result<(), impl Into<RuleError>>) {
        if let Err(error) = result {
            self.0.push((at, error.into()));
        }
    }

    fn list(&mut self, field: Field, errors: Vec<(usize, RuleError)>) {
        self.0
            .extend(errors.into_iter().map(|(i, e)| (field.at(i), e)));
    }
}

/// The rules over single values, and `args` needing `exec`.
fn scalars(view: &ConfigView<'_>, found: &mut Found) {
    if let Known::Now(root) = view.root {
        found.check(Field::Root.whole(), check_root_path(root));
    }
    if let Known::Now(ram) = view.ram {
        found.check(Field::Ram.whole(), check_ram_mib(ram).map(drop));
    }
    if let Some(Known::Now(vcpus)) = view.vcpus {
        found.check(Field::Vcpus.whole(), check_num_vcpus(vcpus).map(drop));
    }
    if let Some(Known::Now(exec)) = view.exec {
        found.check(Field::Exec.whole(), check_exec(exec));
    }
    // An exec known at run time only is there all the same.
    if let Known::Now(args) = &view.args {
        found.check(
            Field::Args.whole(),
            check_args_have_exec(view.exec.is_some(), args.len()),
        );
    }
    if let Some(Known::Now(workdir)) = view.workdir {
        found.check(
            Field::Workdir.whole(),
            normalize_guest_path(workdir).map(drop),
        );
    }
    if let Some(Known::Now(console)) = view.console {
        found.check(Field::Console.whole(), check_host_path(console));
    }
    if let Some(Known::Now(ip)) = view.ip {
        found.check(Field::Ip.whole(), check_ip(ip));
    }
    if let (Known::Now(net), Known::Now(local_only)) = (view.net, view.local_only) {
        found.check(Field::Net.whole(), check_net_with_tsi(net, local_only));
    }
}

/// Which lists are within their length limits (or of unknown length), and
/// so may be walked.
struct Within {
    args: bool,
    env: bool,
    mapped_dirs: bool,
    port_map: bool,
    allow: bool,
    rlimits: bool,
}

impl Within {
    /// Checks every list's length.
    fn check(view: &ConfigView<'_>, found: &mut Found) -> Self {
        let mut within = |field: Field, len: Option<usize>| {
            let Some(len) = len else {
                return true;
            };
            // With `net` unknown, a list is too long only if it is too long
            // either way.
            let result = match view.net {
                Known::Now(net) => check_len(field, len, net),
                Known::Later => check_len_either_way(field, len),
            };
            let ok = result.is_ok();
            found.check(field.whole(), result);
            ok
        };
        Self {
            args: within(Field::Args, view.args.now().map(Vec::len)),
            env: within(Field::Env, view.env.now().map(Vec::len)),
            mapped_dirs: within(Field::MappedDirs, view.mapped_dirs.now().map(Vec::len)),
            port_map: within(Field::PortMap, view.port_map.now().map(Vec::len)),
            allow: within(Field::Allow, view.allow.now().map(Vec::len)),
            rlimits: within(Field::Rlimits, view.rlimits.now().map(Vec::len)),
        }
    }
}

/// The known items of a list, with their indices in it.
fn known_items<T: Copy>(list: &KnownList<T>) -> impl Iterator<Item = (usize, T)> + '_ {
    list.now()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, item)| item.now().map(|item| (i, *item)))
}

/// Whether a list is known to hold items (known or not).
fn has_items<T>(list: &KnownList<T>) -> bool {
    list.now().is_some_and(|items| !items.is_empty())
}

/// The lengths of a list's items; an unknown item counts as empty, an
/// unknown list as none.
fn lens<T: Copy>(list: &KnownList<T>, len: impl Fn(T) -> usize) -> Vec<usize> {
    list.now()
        .into_iter()
        .flatten()
        .map(|item| match item {
            Known::Now(item) => len(*item),
            Known::Later => 0,
        })
        .collect()
}

/// The command's size as `execve` counts it: exact when everything is
/// known, else a lower bound checked against the most room an unknown
/// stack limit could give. Reported at the arguments if there are any,
/// else the environment, else the exec path.
fn command_size(view: &ConfigView<'_>, found: &mut Found) {
    let exec_len = view.exec.map(|exec| match exec {
        Known::Now(exec) => exec.len(),
        Known::Later => 0,
    });
    let arg_lens = lens(&view.args, str::len);
    let env_lens = lens(&view.env, |var| {
        var.name
            .len()
            .saturating_add(1)
            .saturating_add(var.value.len())
    });
    let stack = match &view.rlimits {
        Known::Now(items) if items.iter().all(|i| i.now().is_some()) => {
            stack_soft_limit(known_items(&view.rlimits).map(|(_, l)| (l.resource, l.soft)))
        }
        _ => Some(u64::MAX),
    };
    let field = command_field(has_items(&view.args), has_items(&view.env));
    found.check(
        field.whole(),
        check_command_size(exec_len, &arg_lens, &env_lens, stack),
    );
}

/// The port map's items, and its need for networking, reported at its
/// first mapping (named by its place when it is not known).
fn port_map(view: &ConfigView<'_>, found: &mut Found) {
    let ports: Vec<(usize, u16, u16)> = known_items(&view.port_map)
        .map(|(i, p)| (i, p.host, p.guest))
        .collect();
    found.list(Field::PortMap, check_port_map(&ports));
    let (Known::Now(net), Known::Now(local_only)) = (view.net, view.local_only) else {
        return;
    };
    let Some(first) = first_item(&view.port_map, Field::PortMap, |p| {
        format!("{}:{}", p.host, p.guest)
    }) else {
        return;
    };
    found.check(
        Field::PortMap.at(0),
        check_networking(net, local_only, Some(&first)),
    );
}

/// The allow-list's items, and its need for `net`, reported at its first
/// entry (named by its place when it is not known).
fn allow(view: &ConfigView<'_>, found: &mut Found) {
    let rules: Vec<(usize, &EgressRule)> = known_items(&view.allow).collect();
    found.list(Field::Allow, check_allow(&rules));
    let Known::Now(net) = view.net else {
        return;
    };
    let Some(first) = first_item(&view.allow, Field::Allow, |rule| rule.to_string()) else {
        return;
    };
    found.check(Field::Allow.at(0), check_allow_needs_net(net, Some(&first)));
}

/// The first item of a list known to have one, as `show` writes it, or
/// named by its place (`port_map[0]`) when it is not known.
fn first_item<T: Copy>(
    list: &KnownList<T>,
    field: Field,
    show: impl Fn(T) -> String,
) -> Option<String> {
    let first = list.now()?.first()?;
    Some(match first {
        Known::Now(item) => show(*item),
        Known::Later => field.at(0).to_string(),
    })
}

#[cfg(test)]
mod tests;
