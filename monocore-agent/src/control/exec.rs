//! The `Exec` request: what to run, where (the VM's root, a new container,
//! or a running container), with which resource limits and as which user.
//!
//! # Encoding (control protocol version 2)
//!
//! After the frame's kind byte, in this order (strings, lists and integers
//! as in [`crate::wire`]; a *flag* is one byte, 0 or 1):
//!
//! ```text
//! exec        string
//! args        list of string
//! env         list of string            NAME=value
//! workdir     string                    empty: /
//! tty         flag, then rows: u16, cols: u16 if 1
//! place       u8: 0 Vm | 1 Create, then ContainerSetup | 2 Join, then name: string
//! rlimits     list (≤ MAX_RLIMITS) of (resource: u32, soft: u64, hard: u64)
//! user        flag, then uid: u32, gid: u32, groups: list (≤ MAX_GROUPS) of u32 if 1
//!
//! ContainerSetup:
//! name        string
//! root        string                    a directory of the VM
//! readonly    flag                      the root read-only
//! hostname    flag, then string if 1
//! binds       list (≤ MAX_BINDS) of (source: string, target: string, readonly: flag)
//! ```
//!
//! A tag or flag byte of another value, or a list longer than its maximum,
//! is an error before anything of it is allocated. The decoder checks the
//! form only; [`ExecRequest::check`] checks the values (names, paths), and
//! both ends run it.

use crate::{
    spec::Rlimit,
    wire::{Reader, WireError, Writer},
};

use super::WinSize;

/// The most bind mounts one container gets.
pub const MAX_BINDS: usize = 1024;
/// The most supplementary groups (the kernel's `NGROUPS_MAX`).
pub const MAX_GROUPS: usize = 65536;
/// The most resource limits in one request (Linux has 16 resources).
pub const MAX_RLIMITS: usize = 16;
/// The longest container name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A command to execute in the running VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The program; a name without `/` is looked up in the `PATH` of `env`
    /// (inside the container, for a container's command).
    pub exec: Vec<u8>,
    /// Its arguments (after `argv[0]`).
    pub args: Vec<Vec<u8>>,
    /// Its whole environment, as `NAME=value`.
    pub env: Vec<Vec<u8>>,
    /// Its working directory; empty means `/`.
    pub workdir: Vec<u8>,
    /// With a terminal of this size (a pseudo-terminal in the guest: output
    /// comes as `Stdout` only), or with pipes.
    pub tty: Option<WinSize>,
    /// Where it runs.
    pub place: Place,
    /// Resource limits for it, over the VM's (a resource named here
    /// replaces the VM's limit for it).
    pub rlimits: Vec<Rlimit>,
    /// The user it runs as; `None`: root, as the agent.
    pub user: Option<User>,
}

/// Where a command runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Place {
    /// In the VM's root, as the agent sees it.
    #[default]
    Vm,
    /// In a new container, which lives as long as this command.
    Create(ContainerSetup),
    /// In the running container of this name (its mount namespace and
    /// root).
    Join(Vec<u8>),
}

/// A container to create: a mount namespace of its own whose root is a
/// directory of the VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSetup {
    /// Its name, unique among the VM's running containers.
    pub name: Vec<u8>,
    /// Its root: an existing directory of the VM (a guest path).
    pub root: Vec<u8>,
    /// Whether its root is mounted read-only (its binds keep their own
    /// mode).
    pub readonly_root: bool,
    /// The VM's hostname to set (containers share the VM's UTS namespace).
    pub hostname: Option<Vec<u8>>,
    /// Bind mounts, in order, after `/proc` and `/dev`.
    pub binds: Vec<Bind>,
}

/// One bind mount into a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bind {
    /// What is mounted: a file or directory of the VM (a guest path).
    pub source: Vec<u8>,
    /// Where, inside the container (resolved in its root).
    pub target: Vec<u8>,
    /// Read-only (recursively).
    pub readonly: bool,
}

/// The user a command runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Its user ID.
    pub uid: u32,
    /// Its group ID.
    pub gid: u32,
    /// Its supplementary groups (exactly these; none if empty).
    pub groups: Vec<u32>,
}

const PLACE_VM: u8 = 0;
const PLACE_CREATE: u8 = 1;
const PLACE_JOIN: u8 = 2;

/// Encodes `r` as the body of an `Exec` frame.
pub(crate) fn write_exec(w: &mut Writer, r: &ExecRequest) -> Result<(), WireError> {
    w.string("exec", &r.exec)?;
    w.strings("args", &r.args)?;
    w.strings("env", &r.env)?;
    w.string("workdir", &r.workdir)?;
    match r.tty {
        None => w.bool(false),
        Some(size) => {
            w.bool(true);
            w.u16(size.rows);
            w.u16(size.cols);
        }
    }
    match &r.place {
        Place::Vm => w.u8(PLACE_VM),
        Place::Create(setup) => {
            w.u8(PLACE_CREATE);
            write_setup(w, setup)?;
        }
        Place::Join(name) => {
            w.u8(PLACE_JOIN);
            w.string("place.join", name)?;
        }
    }
    w.count_max("rlimits", r.rlimits.len(), MAX_RLIMITS)?;
    for limit in &r.rlimits {
        w.u32(limit.resource);
        w.u64(limit.soft);
        w.u64(limit.hard);
    }
    match &r.user {
        None => w.bool(false),
        Some(user) => {
            w.bool(true);
            w.u32(user.uid);
            w.u32(user.gid);
            w.count_max("user.groups", user.groups.len(), MAX_GROUPS)?;
            user.groups.iter().for_each(|&g| w.u32(g));
        }
    }
    Ok(())
}

pub(crate) fn write_setup(w: &mut Writer, s: &ContainerSetup) -> Result<(), WireError> {
    w.string("container.name", &s.name)?;
    w.string("container.root", &s.root)?;
    w.bool(s.readonly_root);
    match &s.hostname {
        None => w.bool(false),
        Some(hostname) => {
            w.bool(true);
            w.string("container.hostname", hostname)?;
        }
    }
    w.count_max("container.binds", s.binds.len(), MAX_BINDS)?;
    for bind in &s.binds {
        w.string("container.binds.source", &bind.source)?;
        w.string("container.binds.target", &bind.target)?;
        w.bool(bind.readonly);
    }
    Ok(())
}

/// Decodes the body of an `Exec` frame.
pub(crate) fn read_exec(r: &mut Reader<'_>) -> Result<ExecRequest, WireError> {
    Ok(ExecRequest {
        exec: r.string("exec")?,
        args: r.strings("args")?,
        env: r.strings("env")?,
        workdir: r.string("workdir")?,
        tty: if r.bool("tty")? {
            Some(WinSize {
                rows: r.u16("tty.rows")?,
                cols: r.u16("tty.cols")?,
            })
        } else {
            None
        },
        place: match r.u8("place")? {
            PLACE_VM => Place::Vm,
            PLACE_CREATE => Place::Create(read_setup(r)?),
            PLACE_JOIN => Place::Join(r.string("place.join")?),
            tag => {
                return Err(WireError::BadTag {
                    field: "place",
                    tag,
                });
            }
        },
        rlimits: r.list_max("rlimits", 20, MAX_RLIMITS, |r| {
            Ok(Rlimit {
                resource: r.u32("rlimits")?,
                soft: r.u64("rlimits")?,
                hard: r.u64("rlimits")?,
            })
        })?,
        user: if r.bool("user")? {
            Some(User {
                uid: r.u32("user.uid")?,
                gid: r.u32("user.gid")?,
                groups: r.list_max("user.groups", 4, MAX_GROUPS, |r| r.u32("user.groups"))?,
            })
        } else {
            None
        },
    })
}

pub(crate) fn read_setup(r: &mut Reader<'_>) -> Result<ContainerSetup, WireError> {
    Ok(ContainerSetup {
        name: r.string("container.name")?,
        root: r.string("container.root")?,
        readonly_root: r.bool("container.readonly")?,
        hostname: if r.bool("container.hostname")? {
            Some(r.string("container.hostname")?)
        } else {
            None
        },
        // Each bind takes at least two string lengths and a flag.
        binds: r.list_max("container.binds", 9, MAX_BINDS, |r| {
            Ok(Bind {
                source: r.string("container.binds.source")?,
                target: r.string("container.binds.target")?,
                readonly: r.bool("container.binds.readonly")?,
            })
        })?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::control::{ControlError, HostMessage};

    /// A request that uses every field of version 2.
    pub(crate) fn in_a_new_container() -> ExecRequest {
        ExecRequest {
            exec: b"sh".to_vec(),
            args: vec![b"-c".to_vec(), b"id".to_vec()],
            env: vec![b"PATH=/bin".to_vec()],
            workdir: b"/srv".to_vec(),
            tty: None,
            place: Place::Create(ContainerSetup {
                name: b"web".to_vec(),
                root: b"/pod/web/rootfs".to_vec(),
                readonly_root: true,
                hostname: Some(b"pod-1".to_vec()),
                binds: vec![
                    Bind {
                        source: b"/pod/hosts".to_vec(),
                        target: b"/etc/hosts".to_vec(),
                        readonly: false,
                    },
                    Bind {
                        source: b"/pod/secret".to_vec(),
                        target: b"/var/run/secrets/token".to_vec(),
                        readonly: true,
                    },
                ],
            }),
            rlimits: vec![Rlimit {
                resource: 7,
                soft: 1024,
                hard: 4096,
            }],
            user: Some(User {
                uid: 1000,
                gid: 1000,
                groups: vec![5, 1000],
            }),
        }
    }

    fn body(request: &ExecRequest) -> Vec<u8> {
        let frame = HostMessage::Exec(Box::new(request.clone()))
            .encode()
            .unwrap();
        frame[5..].to_vec()
    }

    #[test]
    fn every_field_round_trips() {
        let request = in_a_new_container();
        assert_eq!(
            HostMessage::decode(0x02, &body(&request)).unwrap(),
            HostMessage::Exec(Box::new(request))
        );
    }

    #[test]
    fn every_truncation_of_a_container_request_is_an_error() {
        let bytes = body(&in_a_new_container());
        for cut in 0..bytes.len() {
            let err = HostMessage::decode(0x02, &bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, ControlError::Body(WireError::Truncated { .. })),
                "{cut}: {err:?}"
            );
        }
    }

    /// The body of `ExecRequest::default()` up to (not including) its
    /// place byte: four empty strings or lists and no terminal.
    fn up_to_place() -> Vec<u8> {
        let mut bytes = vec![0u8; 16];
        bytes.push(0);
        bytes
    }

    #[test]
    fn unknown_tags_and_flags_are_refused() {
        let mut bytes = up_to_place();
        bytes.push(3);
        assert!(matches!(
            HostMessage::decode(0x02, &bytes),
            Err(ControlError::Body(WireError::BadTag {
                field: "place",
                tag: 3
            }))
        ));
        // A terminal flag of 2.
        let mut bytes = vec![0u8; 16];
        bytes.push(2);
        assert!(matches!(
            HostMessage::decode(0x02, &bytes),
            Err(ControlError::Body(WireError::BadTag { field: "tty", .. }))
        ));
    }

    #[test]
    fn counts_over_their_maximum_are_refused_before_allocating() {
        // Create, name "a", root "/", not read-only, no hostname, then
        // u32::MAX binds.
        let mut bytes = up_to_place();
        bytes.push(1);
        for s in [&b"a"[..], b"/"] {
            bytes.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
            bytes.extend_from_slice(s);
        }
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            HostMessage::decode(0x02, &bytes),
            Err(ControlError::Body(WireError::TooMany {
                field: "container.binds",
                max: MAX_BINDS,
                ..
            }))
        ));
        // Seventeen resource limits.
        let mut bytes = up_to_place();
        bytes.push(0);
        bytes.extend_from_slice(&17u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 17 * 20]);
        bytes.push(0);
        assert!(matches!(
            HostMessage::decode(0x02, &bytes),
            Err(ControlError::Body(WireError::TooMany {
                field: "rlimits",
                count: 17,
                ..
            }))
        ));
        // The encoder refuses them too.
        let request = ExecRequest {
            user: Some(User {
                groups: vec![0; MAX_GROUPS + 1],
                ..User::default()
            }),
            ..ExecRequest::default()
        };
        assert!(HostMessage::Exec(Box::new(request)).encode().is_err());
    }
}
