//! [`RuleError`]: every way a config value can break a rule, each with one
//! wording that every front end (`MicroVmConfig::validate`, `vm!`, the TOML
//! loader, the command line) shows as it is. Where the problem is travels
//! apart from the message, as a [`ConfigPath`](crate::ConfigPath).

use core::fmt;
use std::net::Ipv4Addr;

use crate::command::GuestStringError;
use crate::guest_path::GuestPathError;
use crate::limits::MAPPED_DIRS_REASON;
use crate::pair::{EnvPairErrorKind, Excerpt};
use crate::value::{HostPathError, RangeError};
use crate::{Field, rlimit_name};

/// A config value that breaks a rule. The variant carries the offending
/// value; the message says what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// `ram` or `vcpus` out of range.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// A host path (root, mapped directory, console) is unusable.
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    /// A guest path (workdir, mount point) is unusable.
    #[error(transparent)]
    GuestPath(#[from] GuestPathError),
    /// An exec path, argument or environment entry cannot reach the guest.
    #[error(transparent)]
    GuestString(#[from] GuestStringError),
    /// An environment variable name is empty or holds `=` or NUL.
    #[error("invalid environment variable name {}: {kind}", Excerpt(name))]
    EnvName {
        /// The name.
        name: String,
        /// What is wrong with it.
        kind: EnvPairErrorKind,
    },
    /// Arguments without a program to pass them to.
    #[error("{count} argument(s) given without an exec path: they have no program to run")]
    ArgsWithoutExec {
        /// How many arguments.
        count: usize,
    },
    /// A mapped directory whose host or guest path holds `:`, which the
    /// `host:guest` form (and so the VM helper's config channel) cannot
    /// carry.
    #[error(
        "invalid mapped directory {}: a host or guest path holds `:`, which the `host:guest` form cannot carry",
        Excerpt(pair)
    )]
    MappedDirColon {
        /// The pair, as `host:guest`.
        pair: String,
    },
    /// A mount point equal to, inside or above an earlier one.
    #[error(
        "guest path `{guest}` overlaps `{first}`: two mapped directories cannot share or nest mount points"
    )]
    GuestPathsOverlap {
        /// This entry's guest path.
        guest: String,
        /// The earlier entry's guest path.
        first: String,
        /// The earlier entry's index.
        first_index: usize,
    },
    /// A port mapping with port 0.
    #[error("port mapping {pair}: port 0 cannot be mapped: ports are 1 to 65535")]
    PortZero {
        /// The mapping, as `host:guest`.
        pair: String,
    },
    /// A host port mapped twice.
    #[error("host port {port} is mapped twice: each host port may be mapped once")]
    DuplicateHostPort {
        /// The port.
        port: u16,
        /// The first mapping's index.
        first_index: usize,
    },
    /// A guest port mapped twice (libkrun's port map refuses it).
    #[error(
        "guest port {port} is mapped twice: each guest port may be mapped once (libkrun refuses two host ports for one guest port)"
    )]
    DuplicateGuestPort {
        /// The port.
        port: u16,
        /// The first mapping's index.
        first_index: usize,
    },
    /// Ports to expose while networking is off: neither `net` nor TSI
    /// (`local_only = false`).
    #[error(
        "port mapping {pair} needs networking, which is off: neither `net` nor TSI is on to publish the guest port"
    )]
    PortMapNeedsNetworking {
        /// The first mapping, as `host:guest`.
        pair: String,
    },
    /// An egress allow-list while `net` is off: without its interface the
    /// guest has no network for the list to open.
    #[error(
        "allow-list entry {entry} needs `net`, which is off: without it the guest has no network interface, and the allow-list opens nothing"
    )]
    AllowNeedsNet {
        /// The first entry.
        entry: String,
    },
    /// `net` and TSI (`local_only = false`) together.
    #[error(
        "`net` and TSI exclude each other: TSI lets the guest connect to any address the host can reach, around `net`'s allow-list"
    )]
    NetWithTsi,
    /// An allow-list entry listed twice (the same destination, however
    /// written).
    #[error("allow-list entry {entry} is listed twice: each entry may be listed once")]
    DuplicateAllow {
        /// The entry, as it reads once parsed (`PyPI.org.:443` reads
        /// `pypi.org:443`).
        entry: String,
        /// The first entry's index.
        first_index: usize,
    },
    /// A guest IPv4 address, which libkrun cannot set.
    #[error(
        "the guest's IPv4 address cannot be set to {ip}: libkrun 1.19.7's TSI networking shares the host's addresses (only a fork can rewrite them)"
    )]
    IpUnsupported {
        /// The address.
        ip: Ipv4Addr,
    },
    /// A soft limit above its hard limit.
    #[error("resource limit {}: the soft limit {soft} exceeds the hard limit {hard}", ResourceName(*resource))]
    SoftExceedsHard {
        /// The resource number.
        resource: u32,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// A resource limited twice.
    #[error(
        "resource limit {} is set twice: each resource may be limited once",
        ResourceName(*resource)
    )]
    DuplicateRlimit {
        /// The resource number.
        resource: u32,
        /// The first limit's index.
        first_index: usize,
    },
    /// A list longer than its limit.
    #[error("too many {field}: {count} given, at most {max} allowed{}", TooManyReason(*field))]
    TooMany {
        /// The list.
        field: Field,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The command is larger than the guest's `execve` takes.
    #[error(
        "the command (exec path, arguments and environment) takes {size} bytes as the guest's execve counts them: at most {max} fit (a quarter of the stack limit, RLIMIT_STACK)"
    )]
    CommandTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

struct ResourceName(u32);

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match rlimit_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

struct TooManyReason(Field);

impl fmt::Display for TooManyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Field::MappedDirs => write!(f, " ({MAPPED_DIRS_REASON})"),
            Field::Allow => {
                f.write_str(" (one entry `ADDR/PREFIX:PORT` allows a whole network's addresses)")
            }
            _ => Ok(()),
        }
    }
}

/// The fix for a rule error that another key (or flag) resolves. Each front
/// end says it in its own terms: [`Fix`]'s `Display` uses the config keys;
/// the command line names its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fix {
    /// Name the program: the `exec` key.
    AddExec,
    /// Turn networking on: `net = true` (or TSI, `local_only = false`).
    EnableNetworking,
    /// Remove the `ip` key.
    RemoveIp,
    /// Map fewer directories.
    FewerMappedDirs,
    /// Turn TSI off: `local_only = true`.
    DisableNetworking,
    /// Turn `net` on.
    EnableNet,
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fix::AddExec => "add `exec`, the program to run",
            Fix::EnableNetworking => {
                "set `net` to true (each host port then listens on the host's 127.0.0.1), or set `local_only` to false for TSI (which also lets the guest connect to any address the host can reach), or remove the port mappings"
            }
            Fix::RemoveIp => "remove `ip`",
            Fix::FewerMappedDirs => "map fewer directories (or one parent directory)",
            Fix::DisableNetworking => "leave `local_only` true (no TSI)",
            Fix::EnableNet => "set `net` to true",
        })
    }
}

impl RuleError {
    /// How to resolve this error with another setting, if that is the fix.
    pub fn fix(&self) -> Option<Fix> {
        match self {
            RuleError::ArgsWithoutExec { .. } => Some(Fix::AddExec),
            RuleError::PortMapNeedsNetworking { .. } => Some(Fix::EnableNetworking),
            RuleError::AllowNeedsNet { .. } => Some(Fix::EnableNet),
            RuleError::NetWithTsi => Some(Fix::DisableNetworking),
            RuleError::IpUnsupported { .. } => Some(Fix::RemoveIp),
            RuleError::TooMany {
                field: Field::MappedDirs,
                ..
            } => Some(Fix::FewerMappedDirs),
            _ => None,
        }
    }
}
