//! [`GuestCommand`]: a command to run in a running VM, and where its output
//! goes.

use std::{ffi::OsString, os::unix::ffi::OsStrExt, time::Duration};

use monocore_agent::{
    control::{ExecError, ExecProblem, ExecRequest, Place, User, WinSize},
    report::escape,
    spec::Rlimit,
};

use super::{bounds::Bounds, container::GuestContainer};
use crate::{
    config::LinuxRlimitResource,
    error::{GuestCommandError, GuestCommandField},
    runtime::VmExitStatus,
};

/// Where a command's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestOutput {
    /// To this process's stdout or stderr.
    #[default]
    Inherit,
    /// To a pipe read through [`GuestProcess::take_stdout`] or
    /// [`GuestProcess::take_stderr`].
    Piped,
    /// Discarded.
    Null,
}

/// A command to run in a running VM, built like [`std::process::Command`].
///
/// ```no_run
/// use monocore::vm::{GuestCommand, GuestOutput};
/// # fn demo(vm: &mut monocore::vm::VmHandle) -> monocore::MonocoreResult<()> {
/// let output = vm
///     .exec(GuestCommand::new("/bin/echo").arg("hello").stdout(GuestOutput::Piped))?
///     .wait_with_output()?;
/// assert_eq!(output.stdout, b"hello\n");
/// # Ok(()) }
/// ```
///
/// It runs in the VM's root, or in a container inside the VM: a new one
/// ([`in_new_container`](Self::in_new_container)) or a running one
/// ([`in_container`](Self::in_container)), as a pod's containers run in
/// its VM:
///
/// ```no_run
/// use monocore::vm::{GuestCommand, GuestContainer, GuestOutput, LinuxRlimitResource};
/// # fn demo(vm: &mut monocore::vm::VmHandle) -> monocore::MonocoreResult<()> {
/// let app = GuestContainer::new("app", "/pod/app/rootfs")
///     .bind("/pod/volumes/cache", "/cache", false);
/// let mut server = vm.exec(
///     GuestCommand::new("/bin/httpd")
///         .args(["-f", "-p", "8080"])
///         .in_new_container(app)
///         .rlimit(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 1024)
///         .user(1000, 1000, []),
/// )?;
/// let ls = vm
///     .exec(GuestCommand::new("ls").arg("/cache").in_container("app").stdout(GuestOutput::Piped))?
///     .wait_with_output()?;
/// server.kill()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct GuestCommand {
    pub(crate) request: ExecRequest,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bounds: Bounds,
}

impl GuestCommand {
    /// Runs `program` (a path in the guest, or a name looked up in the
    /// command's `PATH`), with no arguments, an empty environment and `/`
    /// as its working directory.
    pub fn new(program: impl Into<OsString>) -> Self {
        let mut command = Self::default();
        command.request.exec = program.into().as_bytes().to_vec();
        command
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.request.args.push(arg.into().as_bytes().to_vec());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.request
            .args
            .extend(args.into_iter().map(|a| a.into().as_bytes().to_vec()));
        self
    }

    /// Sets an environment variable (the command gets only those set here).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let mut entry = name.into().as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.into().as_bytes());
        self.request.env.push(entry);
        self
    }

    /// Sets the working directory (a guest path).
    pub fn current_dir(mut self, dir: impl Into<OsString>) -> Self {
        self.request.workdir = dir.into().as_bytes().to_vec();
        self
    }

    /// Runs the command with a terminal of `rows` × `cols` (a
    /// pseudo-terminal in the guest): its output, stderr included, arrives
    /// on stdout, and input goes through the terminal's line discipline
    /// (`^C` interrupts it).
    pub fn tty(mut self, rows: u16, cols: u16) -> Self {
        self.request.tty = Some(WinSize { rows, cols });
        self
    }

    /// Where stdout goes (default: this process's stdout).
    pub fn stdout(mut self, output: GuestOutput) -> Self {
        self.stdout = output;
        self
    }

    /// Where stderr goes (default: this process's stderr).
    pub fn stderr(mut self, output: GuestOutput) -> Self {
        self.stderr = output;
        self
    }

    /// Kills the command, and everything it started, if it still runs
    /// `timeout` after it started (when the agent said so; `exec` has
    /// returned by then). It is killed whatever it does: SIGKILL to its
    /// process group, its session and every process descended from it.
    ///
    /// The host keeps the time, so it holds even when the guest does not
    /// answer. Once the timeout has passed, [`GuestProcess::wait`] (and
    /// `wait_timeout`, `try_wait`) return
    /// [`MonocoreError::CommandTimedOut`], and
    /// [`GuestProcess::wait_with_output`] returns it with the output
    /// until then. Its `confirmed` says whether the agent reported the
    /// command's end within a short grace (5 s) after the kill; if not, the
    /// handle gave up on it (the VM is frozen or overloaded). Output keeps
    /// streaming as it comes until then.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use monocore::{MonocoreError, vm::{GuestCommand, GuestOutput}};
    /// # fn demo(vm: &mut monocore::vm::VmHandle) -> monocore::MonocoreResult<()> {
    /// let command = GuestCommand::new("sh")
    ///     .args(["-c", "echo started; sleep 600"])
    ///     .stdout(GuestOutput::Piped)
    ///     .timeout(Duration::from_secs(3));
    /// match vm.exec(command)?.wait_with_output() {
    ///     Err(MonocoreError::CommandTimedOut { stdout, .. }) => assert_eq!(stdout, b"started\n"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// [`GuestProcess::wait`]: super::GuestProcess::wait
    /// [`GuestProcess::wait_with_output`]: super::GuestProcess::wait_with_output
    /// [`MonocoreError::CommandTimedOut`]: crate::MonocoreError::CommandTimedOut
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the command in a new container (see [`GuestContainer`]),
    /// which lives as long as the command.
    pub fn in_new_container(mut self, container: GuestContainer) -> Self {
        self.request.place = Place::Create(container.setup);
        self
    }

    /// Runs the command in the running container `name`: its root, its
    /// `/proc`, `/dev` and binds. A container whose command has ended, or
    /// that never was, is a
    /// [`GuestSetup`](crate::MonocoreError::GuestSetup) error at
    /// [`GuestStep::Container`](crate::vm::GuestStep::Container).
    pub fn in_container(mut self, name: impl Into<OsString>) -> Self {
        self.request.place = Place::Join(name.into().as_bytes().to_vec());
        self
    }

    /// Limits `resource` for the command (over the VM's limit for it;
    /// given twice, the last wins). The soft limit must not exceed the
    /// hard one.
    pub fn rlimit(mut self, resource: LinuxRlimitResource, soft: u64, hard: u64) -> Self {
        let resource = resource.as_int();
        self.request.rlimits.retain(|l| l.resource != resource);
        self.request.rlimits.push(Rlimit {
            resource,
            soft,
            hard,
        });
        self
    }

    /// Runs the command as user `uid`, group `gid`, with exactly the
    /// supplementary `groups` (set after the resource limits, so limits
    /// above the user's reach still apply). Without it, the command runs as
    /// root.
    pub fn user(mut self, uid: u32, gid: u32, groups: impl IntoIterator<Item = u32>) -> Self {
        self.request.user = Some(User {
            uid,
            gid,
            groups: groups.into_iter().collect(),
        });
        self
    }

    /// Checks the command as the guest agent will: no NUL in a string, a
    /// container name one path component, absolute paths, bind targets
    /// without `..`, soft limits within hard ones, lists within their
    /// bounds. [`VmHandle::exec`](crate::vm::VmHandle::exec) checks it too,
    /// before anything is sent.
    ///
    /// ```
    /// use monocore::vm::{
    ///     GuestCommand, GuestCommandError, GuestCommandField, LinuxRlimitResource,
    /// };
    /// let command = GuestCommand::new("sh").in_container("a/b");
    /// let Err(GuestCommandError::Invalid { field, .. }) = command.validate() else {
    ///     panic!("a name with a slash")
    /// };
    /// assert_eq!(field, GuestCommandField::Join);
    ///
    /// let command = GuestCommand::new("sh")
    ///     .rlimit(LinuxRlimitResource::RLIMIT_NOFILE, 1024, 4096)
    ///     .rlimit(LinuxRlimitResource::RLIMIT_CORE, 10, 0);
    /// assert_eq!(
    ///     command.validate().unwrap_err().to_string(),
    ///     "guest command: rlimits[1] (RLIMIT_CORE): the soft limit 10 exceeds the hard limit 0"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), GuestCommandError> {
        let r = &self.request;
        r.check()
            .map_err(|e| command_error(e, |field| r.value(field)))?;
        for (index, limit) in r.rlimits.iter().enumerate() {
            if monocore_rules::check_soft_hard(limit.soft, limit.hard).is_err() {
                return Err(GuestCommandError::SoftExceedsHard {
                    index,
                    resource: limit.resource,
                    soft: limit.soft,
                    hard: limit.hard,
                });
            }
        }
        Ok(())
    }
}

/// Output collected by [`GuestProcess::wait_with_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOutputs {
    /// How the command ended.
    pub status: VmExitStatus,
    /// What it wrote to stdout (if piped).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (if piped).
    pub stderr: Vec<u8>,
}

/// A value the agent would refuse, as the error that names it; `value`
/// finds the value at a field.
pub(super) fn command_error<'a>(
    e: ExecError,
    value: impl FnOnce(GuestCommandField) -> &'a [u8],
) -> GuestCommandError {
    match e.problem {
        ExecProblem::TooMany { count, max } => GuestCommandError::TooMany {
            field: e.field,
            count,
            max,
        },
        problem => GuestCommandError::Invalid {
            field: e.field,
            value: escape(value(e.field), 64),
            problem,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::GuestCommandField as Field;

    fn container() -> GuestContainer {
        GuestContainer::new("web", "/pod/web").bind("/pod/hosts", "/etc/hosts", false)
    }

    #[test]
    fn bad_values_are_typed_errors_naming_the_field_and_index() {
        let cases = [
            (
                GuestContainer::new("", "/pod/web"),
                Field::ContainerName,
                ExecProblem::Empty,
            ),
            (
                GuestContainer::new("a/b", "/pod/web"),
                Field::ContainerName,
                ExecProblem::Slash,
            ),
            (
                GuestContainer::new("a\0b", "/pod/web"),
                Field::ContainerName,
                ExecProblem::Nul,
            ),
            (
                GuestContainer::new("web", "pod/web"),
                Field::ContainerRoot,
                ExecProblem::NotAbsolute,
            ),
            (
                container().bind("data", "/data", true),
                Field::BindSource(1),
                ExecProblem::NotAbsolute,
            ),
            (
                container().bind("/data", "/data/../..", true),
                Field::BindTarget(1),
                ExecProblem::DotDot,
            ),
            (
                container().bind("/data", "/", true),
                Field::BindTarget(1),
                ExecProblem::IsRoot,
            ),
        ];
        for (container, field, problem) in cases {
            let command = GuestCommand::new("sh").in_new_container(container);
            match command.validate() {
                Err(GuestCommandError::Invalid {
                    field: f,
                    problem: p,
                    ..
                }) => assert_eq!((f, p), (field, problem)),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_binds_or_groups_are_counted_not_echoed() {
        let many = (0..=monocore_agent::control::MAX_BINDS)
            .fold(GuestContainer::new("web", "/r"), |c, i| {
                c.bind("/s", format!("/t{i}"), false)
            });
        let err = GuestCommand::new("sh")
            .in_new_container(many)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "guest command: container.binds has 1025 entries, at most 1024 are allowed"
        );
        let err = GuestCommand::new("sh")
            .user(1, 1, 0..70_000)
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            GuestCommandError::TooMany {
                field: Field::Groups,
                count: 70_000,
                ..
            }
        ));
    }

    #[test]
    fn a_long_value_is_cut_in_the_message() {
        let err = GuestCommand::new("sh")
            .in_container("x".repeat(10_000))
            .validate()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 200 && text.contains("..."), "{text}");
        assert!(
            text.ends_with("is 10000 bytes long, at most 255 are allowed"),
            "{text}"
        );
    }

    #[test]
    fn the_builder_fills_the_request() {
        let command = GuestCommand::new("sh")
            .in_new_container(container().readonly_root(true).hostname("pod"))
            .rlimit(LinuxRlimitResource::RLIMIT_NOFILE, 1, 2)
            .rlimit(LinuxRlimitResource::RLIMIT_NOFILE, 3, 4)
            .user(1000, 100, [5, 6]);
        let r = &command.request;
        let Place::Create(setup) = &r.place else {
            panic!("{:?}", r.place)
        };
        assert_eq!(
            (
                setup.name.as_slice(),
                setup.readonly_root,
                setup.hostname.as_deref()
            ),
            (&b"web"[..], true, Some(&b"pod"[..]))
        );
        assert_eq!(
            r.rlimits,
            [Rlimit {
                resource: 7,
                soft: 3,
                hard: 4
            }]
        );
        assert_eq!(
            r.user,
            Some(User {
                uid: 1000,
                gid: 100,
                groups: vec![5, 6]
            })
        );
        assert!(command.validate().is_ok());
        let join = GuestCommand::new("sh").in_container("web");
        assert_eq!(join.request.place, Place::Join(b"web".to_vec()));
    }
}
