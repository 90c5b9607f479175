//! Running a VM in a child process: [`MicroVm::spawn`].

use std::{
    ffi::OsString,
    fmt,
    path::Path,
    process::{Child, Command, Stdio},
    time::SystemTime,
};

use super::{
    VmHandle, guest_files, monitor,
    options::{Console, SpawnOptions},
    plan::Plan,
    protocol::{self, HelperRequest},
    self_helper,
};
use crate::{
    config::{LogLevel, MicroVm},
    error::{HelperError, MonocoreResult},
    host::{self, fit},
    state::{self, RunDir},
};

impl MicroVm {
    /// Runs the VM in a child process and returns at once. The console goes
    /// to this process's stdout; see [`spawn_with`](Self::spawn_with) to
    /// capture it.
    ///
    /// The child is this program itself, executed again as the VM helper:
    /// nothing else to build, ship or configure, and nothing to call in
    /// `main`. It is recognised before its `main` runs, so the program's own
    /// code (its `main`, threads, signal handlers, logger, test harness)
    /// never runs in it; a program that cannot be its own helper (monocore
    /// in a shared library) gets [`MonocoreError::SelfHelper`] and nothing is
    /// started. See [`SpawnOptions::helper_path`] for a separate helper
    /// binary instead.
    ///
    /// This process resolves the kernel, makes the VM's private run
    /// directory (the guest agent and its run spec), and starts the helper,
    /// which receives the validated config over a pipe, validates it again,
    /// applies it and enters the VM.
    ///
    /// ```no_run
    /// use monocore::vm::{MicroVm, MicroVmConfig};
    /// let mut config = MicroVmConfig::new("/path/to/rootfs", 256);
    /// config.exec_path = Some("/bin/true".into());
    /// let mut vm = MicroVm::from_config(config)?.spawn()?;
    /// let status = vm.wait()?; // a boot failure is Err(BootFailed), not a code
    /// assert_eq!(status.code(), Some(0));
    /// # Ok::<(), monocore::MonocoreError>(())
    /// ```
    pub fn spawn(&self) -> MonocoreResult<VmHandle> {
        self.spawn_with(&SpawnOptions::default())
    }

    /// [`spawn`](Self::spawn) with options.
    pub fn spawn_with(&self, options: &SpawnOptions) -> MonocoreResult<VmHandle> {
        let (mut plan, kernel) = self.plan_for(options)?;
        // Before any file is made: can the helper start at all?
        let helper = HelperProgram::of(options)?;
        let parent = options.runs_dir.clone().unwrap_or_else(state::vms_dir);
        let run = RunDir::create(&parent)?;
        guest_files::install(run.paths(), &plan.spec)?;
        let framed = protocol::encode_request(&HelperRequest {
            config: self.get_config().clone(),
            kernel,
            run_dir: run.paths().dir().to_path_buf(),
            net: plan.take_net(),
            time_to_live: options.time_to_live,
        })?;
        let log_level = self.get_config().log_level;
        let spawned_at = SystemTime::now();
        let mut child = start_helper(&helper, options, log_level)?;
        // The child has executed it (or failed to): it can be closed.
        drop(helper);
        let watch = monitor::watch(&mut child, log_level)?;
        let mut handle = VmHandle::new(child, watch, spawned_at, run);
        handle.record(self.get_config())?;
        handle.send_request(&framed)?;
        Ok(handle)
    }

    /// The plan for this VM with `options`' kernel and flags. Fails here,
    /// before any process starts, on a config this host cannot run (see
    /// [`check_support`](Self::check_support)).
    fn plan_for(
        &self,
        options: &SpawnOptions,
    ) -> MonocoreResult<(Plan, crate::host::kernel::GuestKernel)> {
        let kernel = options.kernel.resolve()?;
        fit::check(self.get_config(), &kernel, &host::check_kvm_limits())?;
        let mut plan = Plan::new(self.get_config(), &kernel)?;
        if options.keep || options.idle {
            plan.spec.flags |= monocore_agent::spec::FLAG_KEEP;
        }
        if options.idle {
            plan.spec.flags |= monocore_agent::spec::FLAG_NO_MAIN;
        }
        Ok((plan, kernel))
    }
}

/// Starts `helper` with a cleared environment (but for the log filter and
/// the library search path), a pipe as stdin, its private channel on
/// stderr, and the console where `options` says.
fn start_helper(
    helper: &HelperProgram<'_>,
    options: &SpawnOptions,
    log_level: LogLevel,
) -> MonocoreResult<Child> {
    let stdout = match &options.console {
        Console::Inherit => Stdio::inherit(),
        Console::Capture => Stdio::piped(),
        Console::File(fd) => Stdio::from(fd.try_clone().map_err(HelperError::ConsoleFile)?),
    };
    let mut command = helper.command();
    command
        .env_clear()
        .env("RUST_LOG", protocol::log_filter(log_level))
        .env("RUST_LOG_STYLE", "never")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(stdout);
    // libkrun dlopens libkrunfw.so.5; keep the library search path.
    if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
        command.env("LD_LIBRARY_PATH", path);
    }
    if let Some(namespace) = options.network_namespace.clone() {
        use std::os::{fd::AsFd, unix::process::CommandExt};
        // SAFETY: the closure runs in the child between fork and exec: it
        // only makes the `setns` system call (async-signal-safe, no
        // allocation, no lock) on a descriptor the `Arc` keeps open.
        unsafe {
            command.pre_exec(move || {
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(std::io::Error::from)
            });
        }
    }
    command.spawn().map_err(|source| {
        HelperError::Start {
            program: helper.to_string(),
            source,
        }
        .into()
    })
}

/// The program a VM helper runs.
#[derive(Debug)]
enum HelperProgram<'a> {
    /// This program, executed again (the default).
    ThisProgram(self_helper::Executable),
    /// A separate helper binary, with these arguments.
    Binary(&'a Path, &'a [OsString]),
}

impl<'a> HelperProgram<'a> {
    /// The helper `options` name, or this program if it can be its own.
    fn of(options: &'a SpawnOptions) -> MonocoreResult<Self> {
        Ok(match &options.helper_path {
            Some(path) => Self::Binary(path, &options.helper_args),
            None => Self::ThisProgram(self_helper::executable()?),
        })
    }

    fn command(&self) -> Command {
        match self {
            Self::ThisProgram(exe) => exe.command(),
            Self::Binary(path, args) => {
                let mut command = Command::new(path);
                command.args(*args);
                command
            }
        }
    }
}

impl fmt::Display for HelperProgram<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ThisProgram(_) => f.write_str("this program as the VM helper"),
            Self::Binary(path, _) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests;
