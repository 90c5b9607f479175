use std::{fmt, str::FromStr};

use monocore_rules::{RlimitError, RlimitErrorKind, parse_rlimit, rlimit_name, rlimit_resource};

use super::serde_str::serde_via_str;
use crate::error::MonocoreError;

/// A Linux resource, numbered as in `<sys/resource.h>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(non_camel_case_types)]
pub enum LinuxRlimitResource {
    /// CPU time in seconds.
    RLIMIT_CPU = 0,
    /// Largest file that may be created, in bytes.
    RLIMIT_FSIZE = 1,
    /// Data segment size.
    RLIMIT_DATA = 2,
    /// Stack size.
    RLIMIT_STACK = 3,
    /// Core file size.
    RLIMIT_CORE = 4,
    /// Resident set size.
    RLIMIT_RSS = 5,
    /// Number of processes.
    RLIMIT_NPROC = 6,
    /// Number of open files.
    RLIMIT_NOFILE = 7,
    /// Locked memory.
    RLIMIT_MEMLOCK = 8,
    /// Address space size.
    RLIMIT_AS = 9,
    /// File locks.
    RLIMIT_LOCKS = 10,
    /// Pending signals.
    RLIMIT_SIGPENDING = 11,
    /// Bytes in POSIX message queues.
    RLIMIT_MSGQUEUE = 12,
    /// Ceiling of the nice value.
    RLIMIT_NICE = 13,
    /// Ceiling of the real-time priority.
    RLIMIT_RTPRIO = 14,
    /// Real-time CPU time in microseconds.
    RLIMIT_RTTIME = 15,
}

impl LinuxRlimitResource {
    /// Every resource, by number.
    pub const ALL: [LinuxRlimitResource; 16] = [
        Self::RLIMIT_CPU,
        Self::RLIMIT_FSIZE,
        Self::RLIMIT_DATA,
        Self::RLIMIT_STACK,
        Self::RLIMIT_CORE,
        Self::RLIMIT_RSS,
        Self::RLIMIT_NPROC,
        Self::RLIMIT_NOFILE,
        Self::RLIMIT_MEMLOCK,
        Self::RLIMIT_AS,
        Self::RLIMIT_LOCKS,
        Self::RLIMIT_SIGPENDING,
        Self::RLIMIT_MSGQUEUE,
        Self::RLIMIT_NICE,
        Self::RLIMIT_RTPRIO,
        Self::RLIMIT_RTTIME,
    ];

    /// The resource's number.
    pub fn as_int(&self) -> u32 {
        *self as u32
    }
}

impl TryFrom<u32> for LinuxRlimitResource {
    type Error = MonocoreError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_int() == value)
            .ok_or_else(|| {
                MonocoreError::InvalidRlimit(RlimitError {
                    input: value.to_string(),
                    kind: RlimitErrorKind::UnknownResource(value.to_string()),
                })
            })
    }
}

/// Parses an `RLIMIT_*` name or a number 0–15.
impl FromStr for LinuxRlimitResource {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || {
            MonocoreError::InvalidRlimit(RlimitError {
                input: s.to_owned(),
                kind: RlimitErrorKind::UnknownResource(s.to_owned()),
            })
        };
        Self::try_from(rlimit_resource(s).ok_or_else(unknown)?)
    }
}

/// Prints the `RLIMIT_*` name.
impl fmt::Display for LinuxRlimitResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(rlimit_name(self.as_int()).unwrap_or("RLIMIT_UNKNOWN"))
    }
}

/// A resource limit for the guest command: a resource with its soft and hard
/// limits.
///
/// String form: `RLIMIT_NOFILE=1024:2048`, or the resource as its number
/// (`7=1024:2048`). `Display` prints the numeric form, which libkrun reads.
/// A soft limit above the hard limit is an error.
///
/// ```
/// use monocore::vm::{LinuxRlimitResource, LinuxRlimit};
/// let limit: LinuxRlimit = "RLIMIT_NOFILE=1024:2048".parse()?;
/// assert_eq!(*limit.get_resource(), LinuxRlimitResource::RLIMIT_NOFILE);
/// assert_eq!(limit.to_string(), "7=1024:2048");
/// assert!("RLIMIT_NOFILE=4096:1024".parse::<LinuxRlimit>().is_err());
/// # Ok::<(), monocore::MonocoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinuxRlimit {
    resource: LinuxRlimitResource,
    soft: u64,
    hard: u64,
}

impl LinuxRlimit {
    /// Makes a limit without checking it; [`MicroVmConfig::validate`] rejects
    /// soft > hard later.
    ///
    /// [`MicroVmConfig::validate`]: crate::config::MicroVmConfig::validate
    pub fn new(resource: LinuxRlimitResource, soft: u64, hard: u64) -> Self {
        Self {
            resource,
            soft,
            hard,
        }
    }

    /// The limited resource.
    pub fn get_resource(&self) -> &LinuxRlimitResource {
        &self.resource
    }

    /// The soft limit.
    pub fn get_soft(&self) -> &u64 {
        &self.soft
    }

    /// The hard limit.
    pub fn get_hard(&self) -> &u64 {
        &self.hard
    }
}

impl FromStr for LinuxRlimit {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (resource, soft, hard) = parse_rlimit(s)?;
        Ok(Self::new(
            LinuxRlimitResource::try_from(resource)?,
            soft,
            hard,
        ))
    }
}

/// Prints `number=soft:hard`, the form libkrun reads.
impl fmt::Display for LinuxRlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.resource.as_int(), self.soft, self.hard)
    }
}

serde_via_str!(LinuxRlimit);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_numbers_names_and_display() {
        for (i, r) in LinuxRlimitResource::ALL.iter().enumerate() {
            assert_eq!(r.as_int() as usize, i);
            assert_eq!(r.to_string().parse::<LinuxRlimitResource>().unwrap(), *r);
            assert_eq!(i.to_string().parse::<LinuxRlimitResource>().unwrap(), *r);
        }
        assert_eq!(
            LinuxRlimitResource::RLIMIT_NOFILE.to_string(),
            "RLIMIT_NOFILE"
        );
        assert!(matches!(
            LinuxRlimitResource::try_from(16),
            Err(MonocoreError::InvalidRlimit(RlimitError {
                kind: RlimitErrorKind::UnknownResource(_),
                ..
            }))
        ));
    }

    #[test]
    fn parses_named_and_numeric_forms() {
        let a: LinuxRlimit = "RLIMIT_CPU=10:20".parse().unwrap();
        let b: LinuxRlimit = "0=10:20".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, LinuxRlimit::new(LinuxRlimitResource::RLIMIT_CPU, 10, 20));
        assert_eq!(a.to_string(), "0=10:20");
    }

    #[test]
    fn each_parse_failure_maps_to_its_variant() {
        assert!(matches!(
            "RLIMIT_CPU".parse::<LinuxRlimit>(),
            Err(MonocoreError::InvalidRlimit(RlimitError {
                kind: RlimitErrorKind::Format,
                ..
            }))
        ));
        assert!(matches!(
            "RLIMIT_NOPE=1:2".parse::<LinuxRlimit>(),
            Err(MonocoreError::InvalidRlimit(RlimitError {
                kind: RlimitErrorKind::UnknownResource(_),
                ..
            }))
        ));
        assert!(matches!(
            "RLIMIT_CPU=x:2".parse::<LinuxRlimit>(),
            Err(MonocoreError::InvalidRlimit(RlimitError {
                kind: RlimitErrorKind::InvalidValue(_),
                ..
            }))
        ));
        let err = "RLIMIT_NOFILE=2048:1024"
            .parse::<LinuxRlimit>()
            .unwrap_err();
        assert!(matches!(
            err,
            MonocoreError::InvalidRlimit(RlimitError {
                kind: RlimitErrorKind::SoftExceedsHard { .. },
                ..
            })
        ));
        assert!(
            err.to_string()
                .contains("soft limit 2048 exceeds the hard limit 1024")
        );
    }

    #[test]
    fn serde_uses_the_numeric_string_form() {
        let l = LinuxRlimit::new(LinuxRlimitResource::RLIMIT_NOFILE, 1000, 2000);
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"7=1000:2000\"");
        assert_eq!(
            serde_json::from_str::<LinuxRlimit>("\"RLIMIT_NOFILE=1000:2000\"").unwrap(),
            l
        );
    }
}
