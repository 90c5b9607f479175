//! Why a bundle's spec cannot run as a microVM.

use std::path::PathBuf;

use monocore::config::limits::MAX_VCPUS;

use super::path::SpecPath;

/// A spec that could not be read, or that asks for something a microVM
/// cannot honour. Every refusal names the field ([`SpecPath`]) and carries
/// the offending value.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `config.json` could not be read.
    #[error("cannot read the OCI runtime spec {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not JSON.
    #[error("the OCI runtime spec {} is not valid JSON", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A field a microVM cannot honour.
    #[error("{at}: {refusal}")]
    Refused {
        /// The field.
        at: SpecPath,
        /// What is wrong with it.
        refusal: Refusal,
    },
    /// The mapped config breaks one of monocore's rules (the same
    /// `MicroVmConfig::validate` every config goes through).
    #[error("the microVM config mapped from the spec is invalid")]
    Invalid(#[source] monocore::MonocoreError),
}

impl SpecError {
    /// A refusal of the field at `at`.
    pub fn refused(at: SpecPath, refusal: Refusal) -> Self {
        Self::Refused { at, refusal }
    }
}

/// What a microVM cannot honour, with the value that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A field this shim does not know: it is refused rather than dropped.
    #[error("unknown field: refused rather than ignored, since a microVM may not honour it")]
    UnknownField,
    /// The JSON value has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type the spec defines.
        expected: &'static str,
        /// The value found (JSON).
        found: String,
    },
    /// A TTY for the process.
    #[error("a terminal (TTY) is not supported: the guest console is a plain output stream")]
    Terminal,
    /// A user other than root.
    #[error(
        "the command runs as root (uid 0, gid 0) in the guest; uid {uid}, gid {gid} cannot be honoured"
    )]
    User {
        /// The uid asked for.
        uid: u64,
        /// The gid asked for.
        gid: u64,
    },
    /// A umask for the process.
    #[error("a umask ({0:o}) cannot be set for the guest command")]
    Umask(u64),
    /// No command.
    #[error("no command to run: the list is empty")]
    NoCommand,
    /// An environment entry without `=`.
    #[error("`{0}` is not a NAME=value entry")]
    EnvEntry(String),
    /// An unknown `RLIMIT_*` name.
    #[error("unknown resource limit `{0}`")]
    Rlimit(String),
    /// No root directory.
    #[error("no root directory: the spec must name one (root.path)")]
    NoRoot,
    /// A read-only root.
    #[error("a read-only root is not supported: the root is shared with the guest read-write")]
    ReadonlyRoot,
    /// A hostname.
    #[error("setting the guest hostname (`{0}`) is not supported")]
    Hostname(String),
    /// A domain name.
    #[error("setting the guest domain name (`{0}`) is not supported")]
    Domainname(String),
    /// OCI hooks.
    #[error(
        "OCI hooks ({0}) are not supported: there is no container process on the host to run them for"
    )]
    Hooks(String),
    /// Joining a namespace that exists.
    #[error(
        "joining an existing {kind} namespace ({path}) is impossible: the command runs in the VM's own kernel"
    )]
    NamespacePath {
        /// The namespace type.
        kind: String,
        /// The namespace file asked for.
        path: String,
    },
    /// A user namespace.
    #[error("user namespaces are not supported: the guest command runs as the guest's root")]
    UserNamespace,
    /// A namespace type this shim does not know.
    #[error("unknown namespace type `{0}`")]
    UnknownNamespace(String),
    /// uid/gid mappings.
    #[error("uid/gid mappings ({0}) are not supported: there is no user namespace")]
    IdMappings(String),
    /// A device node for the container.
    #[error("device {0} cannot be passed to a microVM: the guest has no host devices")]
    Device(String),
    /// A cgroup rule that allows device access.
    #[error("allowing device access ({0}) is not supported: the guest has no host devices")]
    DeviceAccess(String),
    /// A resource limit other than those mapped.
    #[error(
        "this limit ({0}) cannot be applied to a microVM: only memory.limit and cpu.quota/cpu.period are mapped (to RAM and vCPUs)"
    )]
    Resource(String),
    /// A memory limit that is not a RAM size.
    #[error("a memory limit of {0} bytes is not a RAM size: at least 1 MiB, at most 4 PiB")]
    MemoryLimit(i64),
    /// A CPU quota that is not a vCPU count.
    #[error(
        "a CPU quota of {quota} µs per {period} µs is not a vCPU count: both must be positive and the quotient (rounded up) at most {max}",
        max = MAX_VCPUS
    )]
    CpuQuota {
        /// `cpu.quota`.
        quota: i64,
        /// `cpu.period`.
        period: u64,
    },
    /// A pod-size annotation that is not a number.
    #[error("annotation {name} is {value}: not a number")]
    Annotation {
        /// The annotation.
        name: String,
        /// Its value, quoted.
        value: String,
    },
    /// A monocore networking annotation whose value is not what it takes.
    #[error("annotation {name} is {value}: {reason}")]
    NetAnnotation {
        /// The annotation.
        name: String,
        /// Its value, quoted.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `io.monocore.` annotation this shim does not know.
    #[error(
        "annotation {0} is not one of monocore's (io.monocore.net, io.monocore.allow, io.monocore.publish)"
    )]
    UnknownMonocoreAnnotation(String),
    /// A sysctl.
    #[error("sysctl `{0}` cannot be set: the guest kernel is not configured from the spec")]
    Sysctl(String),
    /// A mount of a type the VM cannot make.
    #[error(
        "a `{kind}` mount at {destination} is not supported: only directory bind mounts and the standard container mounts are"
    )]
    MountType {
        /// Where.
        destination: String,
        /// The mount type.
        kind: String,
    },
    /// A bind mount of a file.
    #[error("{0} is not a directory: only directories can be shared with a microVM (virtio-fs)")]
    BindNotADirectory(String),
    /// A pod container's bind of something that is neither a file nor a
    /// directory (a socket, a device).
    #[error("{0} is neither a file nor a directory: only those can be bound into a pod container")]
    BindNotAFileOrDirectory(String),
    /// A bind mount whose source does not exist.
    #[error("bind mount source {0} does not exist")]
    BindMissing(String),
    /// A bind mount source that is not an absolute UTF-8 path.
    #[error("bind mount source `{0}` is not an absolute host path")]
    BindRelative(String),
    /// A bind mount option the share cannot honour.
    #[error("mount option `{0}` cannot be honoured: a shared directory is read-write and private")]
    MountOption(String),
}
