//! The agent's report to the host: one line in `/.monocore/status`.
//!
//! The agent writes `ready` just before it executes the command, or
//! `failed <step> <errno> <detail>` when a step of the set-up fails. The
//! host reads the file after the VM has ended, to tell "the command exited
//! with code N" from "the VM could not be set up".
//!
//! The file is in the VM's private root, which the guest can write: the host
//! treats it as hostile input. [`Report::parse`] accepts at most
//! [`MAX_REPORT_LEN`] bytes of one printable-ASCII line and nothing else.

use std::fmt;

/// A report is at most this long; the host reads no more.
pub const MAX_REPORT_LEN: usize = 4096;

/// The set-up step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading or decoding the run spec.
    Spec,
    /// Mounting the guest's root filesystem.
    Root,
    /// Switching into it (`pivot_root`).
    Pivot,
    /// Mounting `/dev`, `/proc`, `/sys`, `/dev/pts` or `/dev/shm`.
    System,
    /// Mounting mapped directory number `index` (in config order).
    Mount {
        /// The index in the config's mapped directories.
        index: u32,
    },
    /// Setting the limit for this resource.
    Rlimit {
        /// The resource number.
        resource: u32,
    },
    /// Changing to the working directory.
    Workdir,
    /// Executing the command.
    Exec,
    /// Creating or joining a container for a command of the control
    /// channel (its namespace, root, `/proc`, `/dev`, `pivot_root`; a name
    /// in use; an unknown container).
    Container,
    /// Mounting the container's bind number `index` (in request order).
    Bind {
        /// The index in the request's binds.
        index: u32,
    },
    /// Resolving the directory a file request's path is in (inside the
    /// place's root).
    Resolve,
    /// Writing a file (`WriteFile`).
    Write,
    /// Reading a file (`ReadFile`).
    Read,
    /// Making a directory or a symlink (`Make`).
    Make,
    /// Describing a path or listing a directory (`Stat`).
    Stat,
}

/// What the agent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Set-up is complete; the command is being executed.
    Ready,
    /// A step failed with `errno`; `detail` says what it was working on
    /// (printable ASCII, at most a few hundred bytes).
    Failed {
        /// The step.
        step: Step,
        /// The errno, if the failure was a system call's.
        errno: i32,
        /// What the step was working on (a path, a tag).
        detail: String,
    },
}

/// Why a report could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// Longer than [`MAX_REPORT_LEN`].
    TooLong,
    /// Not one line of printable ASCII in the report grammar.
    Malformed,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(f, "agent report longer than {MAX_REPORT_LEN} bytes"),
            Self::Malformed => f.write_str("malformed agent report"),
        }
    }
}

impl std::error::Error for ReportError {}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec => f.write_str("spec"),
            Self::Root => f.write_str("root"),
            Self::Pivot => f.write_str("pivot"),
            Self::System => f.write_str("system"),
            Self::Mount { index } => write!(f, "mount:{index}"),
            Self::Rlimit { resource } => write!(f, "rlimit:{resource}"),
            Self::Workdir => f.write_str("workdir"),
            Self::Exec => f.write_str("exec"),
            Self::Container => f.write_str("container"),
            Self::Bind { index } => write!(f, "bind:{index}"),
            Self::Resolve => f.write_str("resolve"),
            Self::Write => f.write_str("write"),
            Self::Read => f.write_str("read"),
            Self::Make => f.write_str("make"),
            Self::Stat => f.write_str("stat"),
        }
    }
}

impl Step {
    fn parse(token: &str) -> Option<Self> {
        Some(match token {
            "spec" => Self::Spec,
            "root" => Self::Root,
            "pivot" => Self::Pivot,
            "system" => Self::System,
            "workdir" => Self::Workdir,
            "exec" => Self::Exec,
            "container" => Self::Container,
            "resolve" => Self::Resolve,
            "write" => Self::Write,
            "read" => Self::Read,
            "make" => Self::Make,
            "stat" => Self::Stat,
            _ => {
                let (kind, n) = token.split_once(':')?;
                let n: u32 = n.parse().ok()?;
                match kind {
                    "mount" => Self::Mount { index: n },
                    "rlimit" => Self::Rlimit { resource: n },
                    "bind" => Self::Bind { index: n },
                    _ => return None,
                }
            }
        })
    }
}

/// The longest `detail` of a report, in (printable ASCII) characters.
pub const MAX_DETAIL: usize = 1024;

/// Makes `bytes` printable ASCII (other bytes become `\xNN`), at most `max`
/// characters long: a longer result is cut and ends in `...`. Printable
/// input of at most `max` characters comes back unchanged.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes {
        let piece = if (0x20..0x7f).contains(&b) {
            char::from(b).to_string()
        } else {
            format!("\\x{b:02x}")
        };
        if out.len() + piece.len() > max {
            while out.len() + 3 > max && out.pop().is_some() {}
            out.push_str("...");
            break;
        }
        out.push_str(&piece);
    }
    out
}

impl Report {
    /// The report as the line the agent writes (with its newline).
    pub fn encode(&self) -> String {
        match self {
            Self::Ready => "ready\n".to_owned(),
            Self::Failed {
                step,
                errno,
                detail,
            } => {
                let detail = escape(detail.as_bytes(), MAX_DETAIL);
                format!("failed {step} {errno} {detail}\n")
            }
        }
    }

    /// Parses a report; see the module docs.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        if bytes.len() > MAX_REPORT_LEN {
            return Err(ReportError::TooLong);
        }
        let line = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.strip_suffix('\n'))
            .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or(ReportError::Malformed)?;
        if line == "ready" {
            return Ok(Self::Ready);
        }
        let rest = line.strip_prefix("failed ").ok_or(ReportError::Malformed)?;
        let mut parts = rest.splitn(3, ' ');
        let step = parts.next().and_then(Step::parse);
        let errno = parts.next().and_then(|e| e.parse::<i32>().ok());
        match (step, errno, parts.next()) {
            (Some(step), Some(errno), Some(detail)) if detail.len() <= MAX_DETAIL => {
                Ok(Self::Failed {
                    step,
                    errno,
                    detail: detail.to_owned(),
                })
            }
            _ => Err(ReportError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reports_round_trip() {
        for report in [
            Report::Ready,
            Report::Failed {
                step: Step::Mount { index: 3 },
                errno: 2,
                detail: "/data".into(),
            },
            Report::Failed {
                step: Step::Rlimit { resource: 7 },
                errno: 1,
                detail: String::new(),
            },
            Report::Failed {
                step: Step::Exec,
                errno: 13,
                detail: "/bin/with space".into(),
            },
            Report::Failed {
                step: Step::Container,
                errno: 17,
                detail: "name in use: web".into(),
            },
            Report::Failed {
                step: Step::Bind { index: 4 },
                errno: 30,
                detail: "/etc/hosts".into(),
            },
            Report::Failed {
                step: Step::Read,
                errno: 27,
                detail: "/dev/zero".into(),
            },
        ]
        .into_iter()
        .chain(
            [Step::Resolve, Step::Write, Step::Make, Step::Stat].map(|step| Report::Failed {
                step,
                errno: 2,
                detail: "/x".into(),
            }),
        ) {
            assert_eq!(Report::parse(report.encode().as_bytes()), Ok(report));
        }
    }

    #[test]
    fn details_are_escaped_to_printable_ascii() {
        let report = Report::Failed {
            step: Step::Workdir,
            errno: 2,
            detail: "a\nb\\c\u{e9}".into(),
        };
        let line = report.encode();
        assert_eq!(line, "failed workdir 2 a\\x0ab\\c\\xc3\\xa9\n");
        assert!(Report::parse(line.as_bytes()).is_ok());
    }

    #[test]
    fn long_details_are_cut_and_parse_back_unchanged() {
        let report = Report::Failed {
            step: Step::Exec,
            errno: 2,
            detail: "\u{1}".repeat(5000),
        };
        let line = report.encode();
        let parsed = Report::parse(line.as_bytes()).unwrap();
        let Report::Failed { detail, .. } = &parsed else {
            panic!("{parsed:?}")
        };
        assert!(
            detail.len() <= MAX_DETAIL && detail.ends_with("..."),
            "{detail}"
        );
        assert_eq!(Report::parse(parsed.encode().as_bytes()).unwrap(), parsed);
        // A detail longer than any report carries is refused.
        let long = format!("failed exec 2 {}\n", "a".repeat(MAX_DETAIL + 1));
        assert_eq!(Report::parse(long.as_bytes()), Err(ReportError::Malformed));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"ready",
            b"ready\nready\n",
            b"failed spec x y\n",
            b"failed mount:-1 2 x\n",
            b"failed bind:x 2 x\n",
            b"failed container:1 2 x\n",
            b"failed nope 2 x\n",
            b"failed spec 2\n",
            b"READY\n",
            b"failed spec 2 \x1b[31m\n",
        ] {
            assert_eq!(Report::parse(bad), Err(ReportError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Report::parse(&vec![b'a'; MAX_REPORT_LEN + 1]),
            Err(ReportError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepts_only_what_it_can_reencode(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(report) = Report::parse(&bytes) {
                let again = Report::parse(report.encode().as_bytes());
                prop_assert_eq!(again, Ok(report));
            }
        }
    }
}
