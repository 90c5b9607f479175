//! The run spec: what the host asks the agent to set up and run.
//!
//! The host writes it to `/.monocore/spec` in the VM's private root before
//! the VM starts; the agent reads it once, before it touches anything else.
//! It travels as a file, not on the kernel command line, so arguments and
//! environment values may hold any bytes but NUL, and need no quoting.
//!
//! # Encoding (version 3)
//!
//! All integers are little-endian. A *string* is a `u32` byte length and the
//! bytes (no NUL inside, no terminator). A *list* is a `u32` count and the
//! items.
//!
//! ```text
//! magic       8 bytes  "MCSPEC\0\x02"
//! root_tag    string   virtio-fs tag of the guest's root filesystem
//! exec        string   program to run; empty means /bin/sh
//! workdir     string   working directory; empty means /
//! flags       u32      FLAG_CONTROL | FLAG_KEEP | FLAG_NO_MAIN | FLAG_NET, no other bit
//! args        list of string
//! env         list of string   NAME=value, exactly the command's environment
//! mounts      list of (tag: string, guest_path: string)
//! rlimits     list of (resource: u32, soft: u64, hard: u64)
//! net         only with FLAG_NET: address u32, prefix u32, gateway u32,
//!             mtu u32 (IPv4 addresses in network byte order as u32 values
//!             of `u32::from(Ipv4Addr)`)
//! ```
//!
//! Nothing may follow the last list. [`Spec::decode`] checks every length
//! against the bytes that remain before it allocates, so a hostile or
//! truncated spec is an error, never a large allocation or a panic.

use std::fmt;

use crate::wire::{Reader, WireError, Writer};

/// The first bytes of every spec: a name and the format version (3).
pub const MAGIC: &[u8; 8] = b"MCSPEC\0\x03";

/// The agent listens on the control channel ([`crate::control`]).
pub const FLAG_CONTROL: u32 = 1;
/// The VM keeps running after the main command has ended (until a
/// `Shutdown` on the control channel).
pub const FLAG_KEEP: u32 = 2;
/// There is no main command: the VM only serves the control channel (with
/// [`FLAG_KEEP`]).
pub const FLAG_NO_MAIN: u32 = 4;
/// The guest has a network interface, `eth0`, which the agent configures
/// from [`Spec::net`] before anything runs.
pub const FLAG_NET: u32 = 8;
const KNOWN_FLAGS: u32 = FLAG_CONTROL | FLAG_KEEP | FLAG_NO_MAIN | FLAG_NET;

/// The guest's `eth0`: its address, the gateway (also its DNS server) and
/// the MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSpec {
    /// The interface's IPv4 address.
    pub address: std::net::Ipv4Addr,
    /// The subnet's prefix length (at most 32).
    pub prefix: u8,
    /// The default route's gateway, which also answers DNS.
    pub gateway: std::net::Ipv4Addr,
    /// The interface's MTU.
    pub mtu: u32,
}

/// A spec is at most this long (64 MiB); the agent reads no more.
pub const MAX_SPEC_LEN: usize = 64 << 20;

/// One virtio-fs share to mount in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The virtio-fs tag the host gave the share.
    pub tag: Vec<u8>,
    /// Where it is mounted, as an absolute path in the guest's root.
    pub guest_path: Vec<u8>,
}

/// One resource limit (`setrlimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The resource number (`RLIMIT_NOFILE` is 7 on Linux).
    pub resource: u32,
    /// The soft limit.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// What the agent sets up and runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// The virtio-fs tag of the guest's root filesystem.
    pub root_tag: Vec<u8>,
    /// The program; empty means `/bin/sh`. Without a `/` it is looked up in
    /// the `PATH` of [`env`](Self::env) (or a default `PATH`).
    pub exec: Vec<u8>,
    /// The working directory; empty means `/`.
    pub workdir: Vec<u8>,
    /// [`FLAG_CONTROL`], [`FLAG_KEEP`], [`FLAG_NO_MAIN`].
    pub flags: u32,
    /// The program's arguments (after `argv[0]`, which is `exec`).
    pub args: Vec<Vec<u8>>,
    /// The program's whole environment, as `NAME=value` entries.
    pub env: Vec<Vec<u8>>,
    /// Shares to mount, in order.
    pub mounts: Vec<Mount>,
    /// Resource limits to set.
    pub rlimits: Vec<Rlimit>,
    /// The network interface; present exactly when `flags` has [`FLAG_NET`].
    pub net: Option<NetSpec>,
}

/// Why a spec could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The spec does not start with [`MAGIC`] (not a spec, or another
    /// version).
    BadMagic,
    /// The bytes ended inside `field`.
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A string in `field` holds a NUL byte (it becomes a C string).
    Nul {
        /// The field.
        field: &'static str,
    },
    /// Bytes follow the last field.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// `flags` has a bit this version does not know.
    UnknownFlags {
        /// The flags.
        flags: u32,
    },
    /// The spec is longer than [`MAX_SPEC_LEN`], or a length does not fit a
    /// `u32`.
    TooLong {
        /// The length.
        len: usize,
    },
    /// A field holds a value the encoding does not allow (the
    /// [`WireError`] says which).
    Invalid(WireError),
    /// [`FLAG_NET`] without [`Spec::net`], or the other way round.
    NetMismatch,
    /// A network prefix length over 32.
    BadPrefix {
        /// The prefix length.
        prefix: u32,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("not a version-3 run spec (bad magic)"),
            Self::NetMismatch => {
                f.write_str("run spec: FLAG_NET and the network settings disagree")
            }
            Self::BadPrefix { prefix } => write!(f, "run spec: prefix length {prefix} is over 32"),
            Self::UnknownFlags { flags } => write!(f, "run spec: unknown flags {flags:#x}"),
            Self::Truncated { field } => write!(f, "run spec ends inside `{field}`"),
            Self::Nul { field } => write!(f, "run spec: a string in `{field}` holds a NUL byte"),
            Self::TrailingBytes { count } => {
                write!(f, "run spec: {count} bytes after the last field")
            }
            Self::TooLong { len } => write!(
                f,
                "run spec of {len} bytes is longer than the limit of {MAX_SPEC_LEN} bytes"
            ),
            Self::Invalid(e) => write!(f, "run spec: {e}"),
        }
    }
}

impl std::error::Error for SpecError {}

impl From<WireError> for SpecError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated { field } => Self::Truncated { field },
            WireError::Nul { field } => Self::Nul { field },
            WireError::TooLong { len } => Self::TooLong { len },
            e @ (WireError::BadTag { .. } | WireError::TooMany { .. }) => Self::Invalid(e),
        }
    }
}

impl Spec {
    /// Encodes the spec. Fails only on a NUL in a string or a spec longer
    /// than [`MAX_SPEC_LEN`].
    pub fn encode(&self) -> Result<Vec<u8>, SpecError> {
        let mut out = Writer::new(MAGIC.to_vec());
        out.string("root_tag", &self.root_tag)?;
        out.string("exec", &self.exec)?;
        out.string("workdir", &self.workdir)?;
        out.u32(self.flags);
        out.strings("args", &self.args)?;
        out.strings("env", &self.env)?;
        out.count(self.mounts.len())?;
        for mount in &self.mounts {
            out.string("mounts.tag", &mount.tag)?;
            out.string("mounts.guest_path", &mount.guest_path)?;
        }
        out.count(self.rlimits.len())?;
        for limit in &self.rlimits {
            out.u32(limit.resource);
            out.u64(limit.soft);
            out.u64(limit.hard);
        }
        match (self.flags & FLAG_NET != 0, &self.net) {
            (true, Some(net)) => {
                out.u32(u32::from(net.address));
                out.u32(u32::from(net.prefix));
                out.u32(u32::from(net.gateway));
                out.u32(net.mtu);
            }
            (false, None) => {}
            _ => return Err(SpecError::NetMismatch),
        }
        let bytes = out.finish();
        if bytes.len() > MAX_SPEC_LEN {
            return Err(SpecError::TooLong { len: bytes.len() });
        }
        Ok(bytes)
    }

    /// Decodes a spec; see the module docs for the checks.
    pub fn decode(bytes: &[u8]) -> Result<Self, SpecError> {
        if bytes.len() > MAX_SPEC_LEN {
            return Err(SpecError::TooLong { len: bytes.len() });
        }
        let rest = bytes.strip_prefix(MAGIC).ok_or(SpecError::BadMagic)?;
        let mut r = Reader::new(rest);
        let root_tag = r.string("root_tag")?;
        let exec = r.string("exec")?;
        let workdir = r.string("workdir")?;
        let flags = r.u32("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(SpecError::UnknownFlags { flags });
        }
        let args = r.strings("args")?;
        let env = r.strings("env")?;
        let mounts = r.list("mounts", 8, |r| {
            Ok(Mount {
                tag: r.string("mounts.tag")?,
                guest_path: r.string("mounts.guest_path")?,
            })
        })?;
        let rlimits = r.list("rlimits", 20, |r| {
            Ok(Rlimit {
                resource: r.u32("rlimits")?,
                soft: r.u64("rlimits")?,
                hard: r.u64("rlimits")?,
            })
        })?;
        let net = if flags & FLAG_NET != 0 {
            let address = r.u32("net.address")?.into();
            let prefix = r.u32("net.prefix")?;
            let gateway = r.u32("net.gateway")?.into();
            let mtu = r.u32("net.mtu")?;
            let Ok(prefix @ 0..=32) = u8::try_from(prefix) else {
                return Err(SpecError::BadPrefix { prefix });
            };
            Some(NetSpec {
                address,
                prefix,
                gateway,
                mtu,
            })
        } else {
            None
        };
        if r.remaining() > 0 {
            return Err(SpecError::TrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(Self {
            root_tag,
            exec,
            workdir,
            flags,
            args,
            env,
            mounts,
            rlimits,
            net,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Spec {
        Spec {
            root_tag: b"monocore_root".to_vec(),
            exec: b"/bin/sh".to_vec(),
            workdir: b"/work dir".to_vec(),
            flags: FLAG_CONTROL | FLAG_KEEP | FLAG_NET,
            args: vec![
                b"-c".to_vec(),
                b"echo \"quoted\" 'and' \xff\n".to_vec(),
                Vec::new(),
            ],
            env: vec![b"A=1".to_vec(), b"KRUN_INIT=not special".to_vec()],
            mounts: vec![Mount {
                tag: b"monocore_0".to_vec(),
                guest_path: b"/data".to_vec(),
            }],
            rlimits: vec![Rlimit {
                resource: 7,
                soft: 1024,
                hard: u64::MAX,
            }],
            net: Some(NetSpec {
                address: [10, 0, 2, 15].into(),
                prefix: 24,
                gateway: [10, 0, 2, 2].into(),
                mtu: 65520,
            }),
        }
    }

    #[test]
    fn a_spec_round_trips_byte_for_byte() {
        let spec = sample();
        let bytes = spec.encode().unwrap();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(Spec::decode(&bytes).unwrap(), spec);
        assert_eq!(
            Spec::decode(&Spec::default().encode().unwrap()).unwrap(),
            Spec::default()
        );
    }

    #[test]
    fn nul_bytes_are_refused_both_ways() {
        let mut spec = sample();
        spec.args.push(b"a\0b".to_vec());
        assert_eq!(spec.encode(), Err(SpecError::Nul { field: "args" }));
        // A hand-made spec with a NUL in the exec path.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(b"a\0b");
        assert_eq!(Spec::decode(&bytes), Err(SpecError::Nul { field: "exec" }));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            let err = Spec::decode(&bytes[..cut]).unwrap_err();
            if cut < MAGIC.len() {
                assert_eq!(err, SpecError::BadMagic);
            } else {
                assert!(matches!(err, SpecError::Truncated { .. }), "{cut}: {err:?}");
            }
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            Spec::decode(&long),
            Err(SpecError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn unknown_flags_are_refused() {
        let spec = Spec {
            flags: 16,
            ..Spec::default()
        };
        let bytes = spec.encode().unwrap();
        assert_eq!(
            Spec::decode(&bytes),
            Err(SpecError::UnknownFlags { flags: 16 })
        );
    }

    #[test]
    fn the_net_flag_and_settings_go_together() {
        let mut spec = sample();
        spec.net = None;
        assert_eq!(spec.encode(), Err(SpecError::NetMismatch));
        let mut spec = sample();
        spec.flags &= !FLAG_NET;
        assert_eq!(spec.encode(), Err(SpecError::NetMismatch));
        let mut bytes = sample().encode().unwrap();
        let at = bytes.len() - 12; // the prefix
        bytes[at..at + 4].copy_from_slice(&33u32.to_le_bytes());
        assert_eq!(
            Spec::decode(&bytes),
            Err(SpecError::BadPrefix { prefix: 33 })
        );
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        for _ in 0..4 {
            bytes.extend_from_slice(&0u32.to_le_bytes());
        }
        bytes.extend_from_slice(&u32::MAX.to_le_bytes()); // args
        assert_eq!(
            Spec::decode(&bytes),
            Err(SpecError::Truncated { field: "args" })
        );
        let too_long = vec![0u8; MAX_SPEC_LEN + 1];
        assert_eq!(
            Spec::decode(&too_long),
            Err(SpecError::TooLong {
                len: MAX_SPEC_LEN + 1
            })
        );
    }

    fn bytes_without_nul() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(1u8..=255, 0..40)
    }

    proptest! {
        #[test]
        fn any_spec_round_trips(
            root_tag in bytes_without_nul(),
            exec in bytes_without_nul(),
            args in proptest::collection::vec(bytes_without_nul(), 0..8),
            env in proptest::collection::vec(bytes_without_nul(), 0..8),
            mounts in proptest::collection::vec((bytes_without_nul(), bytes_without_nul()), 0..4),
            rlimits in proptest::collection::vec((any::<u32>(), any::<u64>(), any::<u64>()), 0..4),
            flags in any::<u32>(),
            net in (any::<u32>(), 0u8..=32, any::<u32>(), any::<u32>()),
        ) {
            let flags = flags & KNOWN_FLAGS;
            let net = (flags & FLAG_NET != 0).then(|| NetSpec {
                address: net.0.into(),
                prefix: net.1,
                gateway: net.2.into(),
                mtu: net.3,
            });
            let spec = Spec {
                root_tag,
                exec,
                workdir: b"/".to_vec(),
                flags,
                args,
                env,
                mounts: mounts.into_iter().map(|(tag, guest_path)| Mount { tag, guest_path }).collect(),
                rlimits: rlimits.into_iter().map(|(resource, soft, hard)| Rlimit { resource, soft, hard }).collect(),
                net,
            };
            prop_assert_eq!(Spec::decode(&spec.encode().unwrap()).unwrap(), spec);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            for input in [&bytes, &with_magic] {
                if let Ok(spec) = Spec::decode(input) {
                    // What decodes re-encodes to the same bytes.
                    prop_assert_eq!(&spec.encode().unwrap(), input);
                }
            }
        }
    }
}
