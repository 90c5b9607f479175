//! [`SpawnOptions`]: how [`MicroVm::spawn_with`](crate::vm::MicroVm::spawn_with)
//! runs a VM.

use std::{ffi::OsString, os::fd::OwnedFd, path::PathBuf, sync::Arc, time::Duration};

use crate::host::kernel::KernelChoice;

/// How [`MicroVm::spawn_with`](crate::vm::MicroVm::spawn_with) runs the helper.
///
/// ```
/// use monocore::vm::SpawnOptions;
/// let options = SpawnOptions::new().capture_console(true);
/// assert!(options.is_capturing_console());
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) console: Console,
    pub(crate) helper_path: Option<PathBuf>,
    pub(crate) helper_args: Vec<OsString>,
    pub(crate) kernel: KernelChoice,
    pub(crate) runs_dir: Option<PathBuf>,
    pub(crate) keep: bool,
    pub(crate) idle: bool,
    pub(crate) network_namespace: Option<Arc<OwnedFd>>,
    pub(crate) time_to_live: Option<Duration>,
}

/// Where the guest console goes.
#[derive(Debug, Clone, Default)]
pub(crate) enum Console {
    /// This process's stdout.
    #[default]
    Inherit,
    /// Kept for [`VmHandle::console_output`].
    Capture,
    /// Written straight to this file (a copy of the descriptor is the
    /// helper's stdout).
    File(Arc<OwnedFd>),
}

impl SpawnOptions {
    /// Defaults: the console goes to this process's stdout; the helper is
    /// this program itself (see [`MicroVm::spawn`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Capture the guest console (the guest's stdout and stderr, up to
    /// 16 MiB) for [`VmHandle::console_output`] instead of passing it to
    /// this process's stdout. `false` sends it to this process's stdout
    /// again (replacing [`console_to`](Self::console_to)).
    pub fn capture_console(mut self, capture: bool) -> Self {
        self.console = if capture {
            Console::Capture
        } else {
            Console::Inherit
        };
        self
    }

    /// Whether the console is captured.
    pub fn is_capturing_console(&self) -> bool {
        matches!(self.console, Console::Capture)
    }

    /// Send the guest console (the guest's stdout and stderr, merged) to
    /// `file` instead: a copy of the descriptor becomes the VM helper's
    /// stdout, so the output goes there directly, in full, with nothing in
    /// between (a pipe or FIFO, e.g. a container runtime's stdout FIFO, or
    /// a regular file). Replaces [`capture_console`](Self::capture_console);
    /// [`VmHandle::console_output`] then stays empty.
    ///
    /// ```
    /// use monocore::vm::SpawnOptions;
    /// let log = tempfile::tempfile()?;
    /// let options = SpawnOptions::new().console_to(log);
    /// assert!(options.is_console_to_file());
    /// assert!(!options.is_capturing_console());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn console_to(mut self, file: impl Into<OwnedFd>) -> Self {
        self.console = Console::File(Arc::new(file.into()));
        self
    }

    /// Whether the console goes to a file given to
    /// [`console_to`](Self::console_to).
    pub fn is_console_to_file(&self) -> bool {
        matches!(self.console, Console::File(_))
    }

    /// Boot this kernel instead of the one [`KernelChoice::Auto`] picks.
    pub fn kernel(mut self, kernel: KernelChoice) -> Self {
        self.kernel = kernel;
        self
    }

    /// Keep the VM running after its command has ended, serving
    /// [`VmHandle::exec`], until [`VmHandle::shutdown`] (or until the handle
    /// is dropped or the VM killed). Its exit status is then the command's.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Start no command at all: the VM only serves [`VmHandle::exec`] until
    /// [`VmHandle::shutdown`] (the config's `exec_path` and `args` are not
    /// run).
    pub fn idle(mut self, idle: bool) -> Self {
        self.idle = idle;
        self
    }

    /// End the VM when it has run for `time_to_live` (counted from when its
    /// helper process starts, boot included), whatever runs in it. The
    /// helper process keeps the time and ends the VM itself, so it holds
    /// even if this process is stuck. [`VmHandle::wait`] then returns
    /// [`MonocoreError::VmExpired`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use monocore::vm::SpawnOptions;
    /// let options = SpawnOptions::new().idle(true).time_to_live(Duration::from_secs(600));
    /// assert_eq!(options.get_time_to_live(), Some(Duration::from_secs(600)));
    /// ```
    ///
    /// [`MonocoreError::VmExpired`]: crate::MonocoreError::VmExpired
    pub fn time_to_live(mut self, time_to_live: Duration) -> Self {
        self.time_to_live = Some(time_to_live);
        self
    }

    /// The time to live set with [`time_to_live`](Self::time_to_live).
    pub fn get_time_to_live(&self) -> Option<Duration> {
        self.time_to_live
    }

    /// Run the VM helper (the VMM) in the network namespace `namespace`
    /// (a descriptor of `/proc/<pid>/ns/net` or of a bind-mounted one,
    /// such as a Kubernetes pod's). The guest has no network device of its
    /// own either way; this places the VM where its network side belongs.
    /// Starting the helper fails if the namespace cannot be entered.
    pub fn network_namespace(mut self, namespace: impl Into<OwnedFd>) -> Self {
        self.network_namespace = Some(Arc::new(namespace.into()));
        self
    }

    /// Make the VM's private run directory in `dir` (created if needed; it
    /// must be private to this user) instead of `vms` in the
    /// [cache directory](crate::state::cache_dir). It is removed when the
    /// VM has ended; see [`VmHandle`].
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = Some(dir.into());
        self
    }

    /// Run the VM in this separate helper binary instead of in this program
    /// (whose executable is its own helper by default). Its `main` must call
    /// [`helper_main`](crate::vm::helper_main).
    pub fn helper_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Arguments for the helper binary of [`helper_path`](Self::helper_path)
    /// (e.g. one on which its `main` dispatches to
    /// [`helper_main`](crate::vm::helper_main)). Without `helper_path` they
    /// are not used.
    pub fn helper_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.helper_args = args.into_iter().map(Into::into).collect();
        self
    }
}
