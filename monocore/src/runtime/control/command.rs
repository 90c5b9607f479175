//! [`GuestCommand`]: a command to run in a running VM, and where its output
//! goes.

use std::{ffi::OsString, os::unix::ffi::OsStrExt};

use monocore_agent::control::{ExecRequest, WinSize};

use crate::{
    error::{MonocoreError, MonocoreResult},
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
#[derive(Debug, Clone, Default)]
pub struct GuestCommand {
    pub(crate) request: ExecRequest,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
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

    pub(crate) fn check(&self) -> MonocoreResult<()> {
        let nul = |field: &'static str, value: &[u8]| {
            value.contains(&0).then(|| MonocoreError::NulInString {
                field,
                value: String::from_utf8_lossy(value).into_owned(),
            })
        };
        let r = &self.request;
        let found = nul("exec", &r.exec)
            .or_else(|| nul("workdir", &r.workdir))
            .or_else(|| r.args.iter().find_map(|a| nul("args", a)))
            .or_else(|| r.env.iter().find_map(|e| nul("env", e)));
        found.map_or(Ok(()), Err)
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
