//! The rules for the values of an [`ExecRequest`], in one place: the host
//! checks a request with them before it sends it, and the agent checks it
//! again before it acts on it.

use std::fmt;

use super::exec::{
    ContainerSetup, ExecRequest, MAX_BINDS, MAX_GROUPS, MAX_NAME_LEN, MAX_RLIMITS, Place,
};

/// The longest path, in bytes (`PATH_MAX` less its NUL).
pub const MAX_PATH_LEN: usize = 4095;
/// The longest hostname, in bytes (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME_LEN: usize = 64;

/// Where in an [`ExecRequest`] a value is, as the library's builder names
/// it: `container.binds[2].target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecField {
    /// The program.
    Exec,
    /// Argument `n` (after `argv[0]`).
    Arg(usize),
    /// Environment entry `n`.
    Env(usize),
    /// The working directory.
    Workdir,
    /// The new container's name.
    ContainerName,
    /// The new container's root.
    ContainerRoot,
    /// The hostname a new container sets.
    Hostname,
    /// The new container's binds, as a list.
    Binds,
    /// Bind `n`'s source.
    BindSource(usize),
    /// Bind `n`'s target.
    BindTarget(usize),
    /// The name of the container to join.
    Join,
    /// The resource limits, as a list.
    Rlimits,
    /// The supplementary groups, as a list.
    Groups,
}

impl fmt::Display for ExecField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exec => f.write_str("exec"),
            Self::Arg(n) => write!(f, "args[{n}]"),
            Self::Env(n) => write!(f, "env[{n}]"),
            Self::Workdir => f.write_str("workdir"),
            Self::ContainerName => f.write_str("container.name"),
            Self::ContainerRoot => f.write_str("container.root"),
            Self::Hostname => f.write_str("container.hostname"),
            Self::Binds => f.write_str("container.binds"),
            Self::BindSource(n) => write!(f, "container.binds[{n}].source"),
            Self::BindTarget(n) => write!(f, "container.binds[{n}].target"),
            Self::Join => f.write_str("join"),
            Self::Rlimits => f.write_str("rlimits"),
            Self::Groups => f.write_str("user.groups"),
        }
    }
}

/// What is wrong with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecProblem {
    /// It holds a NUL byte.
    Nul,
    /// It is empty.
    Empty,
    /// A name holds a `/`.
    Slash,
    /// It is longer than `max` bytes.
    TooLong {
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A path does not start with `/`.
    NotAbsolute,
    /// A target path has a `..` component.
    DotDot,
    /// A target path is `/`: nothing is mounted over a container's root.
    IsRoot,
    /// A list has more than `max` entries.
    TooMany {
        /// How many it has.
        count: usize,
        /// The most allowed.
        max: usize,
    },
}

impl fmt::Display for ExecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nul => f.write_str("holds a NUL byte"),
            Self::Empty => f.write_str("is empty"),
            Self::Slash => f.write_str("holds a `/` (a name is one path component)"),
            Self::TooLong { len, max } => {
                write!(f, "is {len} bytes long, at most {max} are allowed")
            }
            Self::NotAbsolute => f.write_str("is not an absolute path (it must start with `/`)"),
            Self::DotDot => f.write_str("has a `..` component"),
            Self::IsRoot => f.write_str("is `/`: nothing is mounted over a container's root"),
            Self::TooMany { count, max } => {
                write!(f, "has {count} entries, at most {max} are allowed")
            }
        }
    }
}

/// A value of an [`ExecRequest`] that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecError {
    /// Where it is.
    pub field: ExecField,
    /// What is wrong.
    pub problem: ExecProblem,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

impl std::error::Error for ExecError {}

/// Checks a container name: not empty, at most [`MAX_NAME_LEN`] bytes, no
/// NUL, no `/`.
///
/// ```
/// use monocore_agent::control::{ExecProblem, check_name};
/// assert_eq!(check_name(b"web-1"), Ok(()));
/// assert_eq!(check_name(b""), Err(ExecProblem::Empty));
/// assert_eq!(check_name(b"a/b"), Err(ExecProblem::Slash));
/// ```
pub fn check_name(name: &[u8]) -> Result<(), ExecProblem> {
    if name.is_empty() {
        return Err(ExecProblem::Empty);
    }
    check_len(name, MAX_NAME_LEN)?;
    if name.contains(&0) {
        return Err(ExecProblem::Nul);
    }
    if name.contains(&b'/') {
        return Err(ExecProblem::Slash);
    }
    Ok(())
}

/// Checks a guest path: absolute, at most [`MAX_PATH_LEN`] bytes, no NUL.
pub fn check_path(path: &[u8]) -> Result<(), ExecProblem> {
    check_len(path, MAX_PATH_LEN)?;
    if path.contains(&0) {
        return Err(ExecProblem::Nul);
    }
    if !path.starts_with(b"/") {
        return Err(ExecProblem::NotAbsolute);
    }
    Ok(())
}

/// Checks a bind target: a [`check_path`] path with no `..` component
/// that is not `/` (once `.` and empty components are dropped).
///
/// ```
/// use monocore_agent::control::{ExecProblem, check_target};
/// assert_eq!(check_target(b"/etc/hosts"), Ok(()));
/// assert_eq!(check_target(b"/a/../b"), Err(ExecProblem::DotDot));
/// assert_eq!(check_target(b"/./"), Err(ExecProblem::IsRoot));
/// ```
pub fn check_target(path: &[u8]) -> Result<(), ExecProblem> {
    check_path(path)?;
    let mut parts = components(path).peekable();
    if parts.peek().is_none() {
        return Err(ExecProblem::IsRoot);
    }
    if parts.any(|c| c == b"..") {
        return Err(ExecProblem::DotDot);
    }
    Ok(())
}

/// The components of `path`, without empty and `.` ones.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

fn check_len(value: &[u8], max: usize) -> Result<(), ExecProblem> {
    if value.len() > max {
        return Err(ExecProblem::TooLong {
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_count(field: ExecField, count: usize, max: usize) -> Result<(), ExecError> {
    if count > max {
        return Err(ExecError {
            field,
            problem: ExecProblem::TooMany { count, max },
        });
    }
    Ok(())
}

fn no_nul(field: ExecField, value: &[u8]) -> Result<(), ExecError> {
    if value.contains(&0) {
        return Err(ExecError {
            field,
            problem: ExecProblem::Nul,
        });
    }
    Ok(())
}

fn at(field: ExecField) -> impl FnOnce(ExecProblem) -> ExecError {
    move |problem| ExecError { field, problem }
}

impl ContainerSetup {
    /// The value at `field` (empty for a list, or a field a container
    /// setup does not have).
    pub fn value(&self, field: ExecField) -> &[u8] {
        let bind = |n: usize| self.binds.get(n);
        let value = match field {
            ExecField::ContainerName => Some(&self.name),
            ExecField::ContainerRoot => Some(&self.root),
            ExecField::Hostname => self.hostname.as_ref(),
            ExecField::BindSource(n) => bind(n).map(|b| &b.source),
            ExecField::BindTarget(n) => bind(n).map(|b| &b.target),
            ExecField::Exec
            | ExecField::Arg(_)
            | ExecField::Env(_)
            | ExecField::Workdir
            | ExecField::Join
            | ExecField::Binds
            | ExecField::Rlimits
            | ExecField::Groups => None,
        };
        value.map_or(&[], Vec::as_slice)
    }

    /// Checks every value; the first problem found, in field order.
    pub fn check(&self) -> Result<(), ExecError> {
        check_name(&self.name).map_err(at(ExecField::ContainerName))?;
        check_path(&self.root).map_err(at(ExecField::ContainerRoot))?;
        if let Some(hostname) = &self.hostname {
            check_len(hostname, MAX_HOSTNAME_LEN).map_err(at(ExecField::Hostname))?;
            no_nul(ExecField::Hostname, hostname)?;
        }
        check_count(ExecField::Binds, self.binds.len(), MAX_BINDS)?;
        for (n, bind) in self.binds.iter().enumerate() {
            check_path(&bind.source).map_err(at(ExecField::BindSource(n)))?;
            check_target(&bind.target).map_err(at(ExecField::BindTarget(n)))?;
        }
        Ok(())
    }
}

impl ExecRequest {
    /// The value at `field` (empty for a list, or a field this request
    /// does not have).
    pub fn value(&self, field: ExecField) -> &[u8] {
        let value = match field {
            ExecField::Exec => Some(&self.exec),
            ExecField::Arg(n) => self.args.get(n),
            ExecField::Env(n) => self.env.get(n),
            ExecField::Workdir => Some(&self.workdir),
            ExecField::Join => match &self.place {
                Place::Join(name) => Some(name),
                Place::Vm | Place::Create(_) => None,
            },
            ExecField::ContainerName
            | ExecField::ContainerRoot
            | ExecField::Hostname
            | ExecField::BindSource(_)
            | ExecField::BindTarget(_) => {
                return match &self.place {
                    Place::Create(setup) => setup.value(field),
                    Place::Vm | Place::Join(_) => &[],
                };
            }
            ExecField::Binds | ExecField::Rlimits | ExecField::Groups => None,
        };
        value.map_or(&[], Vec::as_slice)
    }

    /// Checks every value; the first problem found, in field order.
    pub fn check(&self) -> Result<(), ExecError> {
        no_nul(ExecField::Exec, &self.exec)?;
        for (n, arg) in self.args.iter().enumerate() {
            no_nul(ExecField::Arg(n), arg)?;
        }
        for (n, entry) in self.env.iter().enumerate() {
            no_nul(ExecField::Env(n), entry)?;
        }
        no_nul(ExecField::Workdir, &self.workdir)?;
        match &self.place {
            Place::Vm => {}
            Place::Join(name) => check_name(name).map_err(at(ExecField::Join))?,
            Place::Create(setup) => setup.check()?,
        }
        check_count(ExecField::Rlimits, self.rlimits.len(), MAX_RLIMITS)?;
        if let Some(user) = &self.user {
            check_count(ExecField::Groups, user.groups.len(), MAX_GROUPS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Bind, ContainerSetup, User, exec::tests::in_a_new_container};

    fn create(edit: impl FnOnce(&mut ContainerSetup)) -> ExecRequest {
        let mut request = in_a_new_container();
        if let Place::Create(setup) = &mut request.place {
            edit(setup);
        }
        request
    }

    fn problem(request: &ExecRequest) -> Option<(String, ExecProblem)> {
        request
            .check()
            .err()
            .map(|e| (e.field.to_string(), e.problem))
    }

    #[test]
    fn a_well_formed_request_passes() {
        assert_eq!(in_a_new_container().check(), Ok(()));
        assert_eq!(ExecRequest::default().check(), Ok(()));
    }

    /// Requests with one bad value each, its field and its problem.
    fn bad_requests() -> Vec<(ExecRequest, &'static str, ExecProblem)> {
        vec![
            (
                create(|s| s.name.clear()),
                "container.name",
                ExecProblem::Empty,
            ),
            (
                create(|s| s.name = b"a/b".to_vec()),
                "container.name",
                ExecProblem::Slash,
            ),
            (
                create(|s| s.name = b"a\0".to_vec()),
                "container.name",
                ExecProblem::Nul,
            ),
            (
                create(|s| s.name = vec![b'x'; 256]),
                "container.name",
                ExecProblem::TooLong { len: 256, max: 255 },
            ),
            (
                create(|s| s.root = b"rootfs".to_vec()),
                "container.root",
                ExecProblem::NotAbsolute,
            ),
            (
                create(|s| s.hostname = Some(vec![b'h'; 65])),
                "container.hostname",
                ExecProblem::TooLong { len: 65, max: 64 },
            ),
            (
                create(|s| s.binds[1].target = b"/x/../../etc".to_vec()),
                "container.binds[1].target",
                ExecProblem::DotDot,
            ),
            (
                create(|s| s.binds[0].target = b"//.".to_vec()),
                "container.binds[0].target",
                ExecProblem::IsRoot,
            ),
            (
                create(|s| s.binds[1].source = b"data".to_vec()),
                "container.binds[1].source",
                ExecProblem::NotAbsolute,
            ),
            (
                create(|s| s.binds = vec![Bind::default(); MAX_BINDS + 1]),
                "container.binds",
                ExecProblem::TooMany {
                    count: MAX_BINDS + 1,
                    max: MAX_BINDS,
                },
            ),
            (
                ExecRequest {
                    place: Place::Join(Vec::new()),
                    ..ExecRequest::default()
                },
                "join",
                ExecProblem::Empty,
            ),
            (
                ExecRequest {
                    args: vec![b"ok".to_vec(), b"n\0".to_vec()],
                    ..ExecRequest::default()
                },
                "args[1]",
                ExecProblem::Nul,
            ),
            (
                ExecRequest {
                    user: Some(User {
                        groups: vec![0; MAX_GROUPS + 1],
                        ..User::default()
                    }),
                    ..ExecRequest::default()
                },
                "user.groups",
                ExecProblem::TooMany {
                    count: MAX_GROUPS + 1,
                    max: MAX_GROUPS,
                },
            ),
        ]
    }

    #[test]
    fn each_bad_value_is_named_by_its_field_and_index() {
        for (request, field, expected) in bad_requests() {
            assert_eq!(problem(&request), Some((field.to_owned(), expected)));
        }
    }

    #[test]
    fn a_field_names_its_value() {
        let request = in_a_new_container();
        assert_eq!(
            request.value(ExecField::BindTarget(1)),
            b"/var/run/secrets/token"
        );
        assert_eq!(request.value(ExecField::Hostname), b"pod-1");
        assert_eq!(request.value(ExecField::Arg(1)), b"id");
        assert_eq!(request.value(ExecField::BindSource(9)), b"");
        assert_eq!(request.value(ExecField::Join), b"");
    }

    #[test]
    fn errors_read_as_english() {
        let err = create(|s| s.binds[1].target = b"etc".to_vec())
            .check()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "container.binds[1].target is not an absolute path (it must start with `/`)"
        );
    }

    #[test]
    fn target_components_drop_empty_and_dot_parts() {
        let parts: Vec<&[u8]> = components(b"//a/./b//c/").collect();
        assert_eq!(parts, [&b"a"[..], b"b", b"c"]);
    }
}
