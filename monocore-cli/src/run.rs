//! `monocore run`: boot a microVM and run a command in it.

use crate::output::{err, errln, note, outln, step};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    config::{EnvPair, file::load_config},
    host::HostReport,
    image::ImageRootfs,
    kernel::KernelChoice,
    rootfs::RunRootfs,
    vm::{GuestCommand, MicroVm, MicroVmConfig, SpawnOptions, VmExitStatus, VmHandle},
};

use crate::{
    EXIT_MONOCORE_FAILED, EXIT_TIMEOUT,
    attach::{Attach, Ended},
    doctor::doctor_table,
    env_flags::read_env_files,
    fail, fail_explained, flag_errors, image,
    run_args::{RunArgs, Words, build_config},
    terminal,
};

/// Exit code for a bad command line (as clap's own errors).
pub(crate) const EXIT_USAGE: u8 = 2;

/// The `--config` file, with each problem printed as `config check` does.
fn load_file(path: &Path) -> Result<MicroVmConfig, ExitCode> {
    // Absolute, so that paths in it resolve to absolute ones.
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match load_config(path) {
        Ok(config) => Ok(config),
        Err(MonocoreError::ConfigFile(errors)) => {
            for e in &errors.0 {
                errln!("{}:{e}", path.display());
            }
            errln!(
                "monocore: error: {}: {} problem(s); nothing was started",
                path.display(),
                errors.0.len()
            );
            Err(ExitCode::from(EXIT_MONOCORE_FAILED))
        }
        Err(e) => Err(fail_explained(&format!("--config {}", path.display()), &e)),
    }
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    // What the command line says, before anything is made.
    let input = match Input::read(&args) {
        Ok(input) => input,
        Err(code) => return code,
    };
    if let Some(pool) = &args.pool {
        return crate::pooled_run::run(pool, &args, input);
    }
    // The stop signals' handlers are in place (see `main`): a signal from
    // here on is seen at the next step, and what the run made is removed
    // on the way out.
    let root = match Root::prepare(&args, &input) {
        Ok(root) => root,
        Err(code) => return code,
    };
    if let Some(signal) = terminal::stop_signal() {
        return stopped_exit_code(signal, "no VM was started");
    }
    let kernel = args
        .kernel
        .clone()
        .map_or(KernelChoice::Auto, KernelChoice::Elf);
    let Input {
        words,
        env_from_files,
        file,
        ..
    } = input;
    let mut config = build_config(&args, file, root.path, &words, env_from_files);
    if let Some(rootfs) = &root.image
        && let Err(e) = image::apply(rootfs, &args.image_flags, &mut config)
    {
        return fail(&e);
    }
    let vm = match MicroVm::from_config(config.clone())
        .and_then(|vm| check_support(&vm, &kernel, args.dry_run).map(|()| vm))
    {
        Ok(vm) => vm,
        Err(e) => return fail_explained(&flag_errors::explain(&e, &config), &e),
    };
    if args.dry_run {
        return match serde_json::to_string_pretty(vm.get_config()) {
            Ok(json) => {
                outln!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    boot(&vm, kernel, &args)
}

/// What `run`'s command line gives, read before anything is made.
pub(crate) struct Input {
    pub(crate) words: Words,
    pub(crate) env_from_files: Vec<EnvPair>,
    pub(crate) file: Option<MicroVmConfig>,
    pub(crate) image_ref: Option<String>,
}

impl Input {
    fn read(args: &RunArgs) -> Result<Self, ExitCode> {
        let words = args.words().map_err(|message| {
            errln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        })?;
        let env_from_files = read_env_files(&args.env_file).map_err(|e| {
            crate::fail(&e);
            ExitCode::from(EXIT_USAGE)
        })?;
        let file = args.config.as_deref().map(load_file).transpose()?;
        let image_ref = args.image.clone().or_else(|| words.image.clone());
        if image_ref.is_none() && (args.image_flags.entrypoint.is_some() || args.image_flags.pull) {
            errln!("error: --entrypoint and --pull need an IMAGE");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        if let (Some(reference), Some(path)) = (&image_ref, &args.config)
            && args.root.is_none()
        {
            step!("image {reference} replaces the root of {}", path.display());
        }
        Ok(Self {
            words,
            env_from_files,
            file,
            image_ref,
        })
    }
}

/// The VM's root filesystem: `--root`, or a private copy (of IMAGE's root,
/// or, without a root from the command line or the config file, of the
/// cached busybox template) that is removed when this is dropped (the
/// guest can write to its root).
pub(crate) struct Root {
    /// The root to use; `None`: the config file's.
    pub(crate) path: Option<PathBuf>,
    /// A private busybox copy.
    _busybox: Option<RunRootfs>,
    /// A private copy of IMAGE's root.
    pub(crate) image: Option<ImageRootfs>,
}

impl Root {
    pub(crate) fn prepare(args: &RunArgs, input: &Input) -> Result<Self, ExitCode> {
        let mut root = Self {
            path: args.root.clone(),
            _busybox: None,
            image: None,
        };
        match (&args.root, &input.image_ref, &input.file) {
            (Some(_), _, _) | (None, None, Some(_)) => {}
            (None, Some(reference), _) => {
                // A pull does not look at the stop flag: a second signal quits.
                terminal::second_signal_quits(true);
                let pulled = image::run_rootfs(reference, &args.image_flags);
                terminal::second_signal_quits(false);
                let copy = pulled.map_err(|e| stopped_or(|| fail(&e)))?;
                root.path = Some(copy.path().to_path_buf());
                root.image = Some(copy);
            }
            (None, None, None) => {
                let copy = prepare_busybox().map_err(|e| stopped_or(|| fail(&e)))?;
                root.path = Some(copy.path().to_path_buf());
                root._busybox = Some(copy);
            }
        }
        Ok(root)
    }
}

/// Boots `vm` once the host check allows it (or `--force` says to try).
fn boot(vm: &MicroVm, kernel: KernelChoice, args: &RunArgs) -> ExitCode {
    let report = monocore::host::check();
    // With --kernel, what the host check says of the kernel it would pick
    // does not matter.
    let blocked = report
        .problems
        .iter()
        .any(|p| args.kernel.is_none() || !p.is_about_the_kernel());
    if blocked && !args.force {
        errln!("monocore: this host cannot boot microVMs, so none was started.\n");
        err!("{}", doctor_table(&report));
        errln!("\n(`monocore doctor` prints this report; `monocore run --force` tries anyway.)");
        return ExitCode::from(EXIT_MONOCORE_FAILED);
    }
    let attach = (args.interactive || args.tty).then_some(Attach {
        interactive: args.interactive,
        tty: args.tty,
        timeout: args.timeout,
    });
    let how = Launch {
        attach,
        keep: args.keep,
        timeout: args.timeout,
    };
    launch(vm, kernel, how, &report)
}

/// Checks that this host can run `vm` with `kernel` (its memory, vCPUs,
/// the kernel's networking), before anything starts. For `--dry-run` on a
/// host where no kernel or no KVM can boot, nothing is checked against the
/// host: the config is valid, and the dry run says so.
fn check_support(vm: &MicroVm, kernel: &KernelChoice, dry_run: bool) -> Result<(), MonocoreError> {
    match vm.check_support_with_kernel(kernel) {
        Err(MonocoreError::Kernel { .. } | MonocoreError::HostCannotBoot { .. }) if dry_run => {
            Ok(())
        }
        // Without a usable kernel or KVM the run ends in the doctor report.
        Err(MonocoreError::Kernel { .. } | MonocoreError::HostCannotBoot { .. }) => Ok(()),
        other => other,
    }
}

pub(crate) fn exit_code_of(status: VmExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + (signal & 0x7f)).unwrap_or(1)),
        (None, None) => ExitCode::from(EXIT_MONOCORE_FAILED),
    }
}

/// The exit code after this process got `signal` (128 + N: 130 for SIGINT,
/// 143 for SIGTERM, 129 for SIGHUP, 131 for SIGQUIT), saying what was
/// killed.
pub(crate) fn stopped_exit_code(signal: i32, what: &str) -> ExitCode {
    errln!("monocore: interrupted (signal {signal}); {what}");
    ExitCode::from(u8::try_from(128 + (signal & 0x7f)).unwrap_or(EXIT_MONOCORE_FAILED))
}

/// What `run` does once the VM is spawned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch {
    /// Run the command over the control channel, attached (`-i`/`-t`).
    pub(crate) attach: Option<Attach>,
    /// Keep the VM running after the command (`--keep`).
    pub(crate) keep: bool,
    pub(crate) timeout: Option<Duration>,
}

/// The default root: a private copy of the busybox template (prepared
/// once), with a progress line on a terminal meanwhile.
fn prepare_busybox() -> Result<RunRootfs, MonocoreError> {
    step!("preparing a private copy of the busybox rootfs");
    let line = crate::progress::Line::start("preparing the busybox rootfs");
    let copy = RunRootfs::busybox();
    line.done();
    if let Ok(copy) = &copy {
        step!("rootfs ready: {}", copy.path().display());
    }
    copy
}

/// The exit code of a stop signal if one came (whatever else happened
/// meanwhile), else `otherwise()`.
fn stopped_or(otherwise: impl FnOnce() -> ExitCode) -> ExitCode {
    match terminal::stop_signal() {
        Some(signal) => stopped_exit_code(signal, "no VM was started"),
        None => otherwise(),
    }
}

fn launch(vm: &MicroVm, kernel: KernelChoice, how: Launch, report: &HostReport) -> ExitCode {
    // The VM helper is this program itself (see `MicroVm::spawn`).
    // Attached, the command talks to this terminal over the control
    // channel; the VMM's console (kernel messages only) is kept off it.
    let options = SpawnOptions::new()
        .kernel(kernel)
        .keep(how.keep)
        .idle(how.attach.is_some())
        .capture_console(how.attach.is_some());
    step!("starting the VM helper");
    let mut handle = match vm.spawn_with(&options) {
        Ok(handle) => handle,
        Err(e) => return stopped_or(|| fail(&e)),
    };
    step!("VM helper started (pid {})", handle.pid());
    if how.keep
        && let Some(id) = handle.id()
    {
        note!(
            "monocore: VM {id} keeps running after its command; \
             `monocore exec {id} -- CMD` runs more, `monocore stop {id}` ends it"
        );
    }
    if let Some(attach) = how.attach {
        let ended = attached(&mut handle, vm.get_config(), attach);
        if !how.keep || !matches!(ended, Ok(Ended::Exited(_))) {
            let _ = handle.shutdown();
            if let Some(signal) = terminal::stop_signal() {
                return stopped_exit_code(signal, "the VM was killed");
            }
            return match ended {
                Ok(Ended::Exited(status)) => exit_code_of(status),
                Ok(Ended::Stopped(signal)) => stopped_exit_code(signal, "the VM was killed"),
                Ok(Ended::TimedOut) => timed_out(how.timeout),
                Err(e) => boot_or_other_failure(e, report),
            };
        }
    }
    wait(&mut handle, how.timeout, report)
}

/// Runs the config's command over the control channel, attached here.
fn attached(
    handle: &mut VmHandle,
    config: &MicroVmConfig,
    attach: Attach,
) -> Result<Ended, MonocoreError> {
    let mut command =
        GuestCommand::new(config.exec_path.as_ref().map_or("/bin/sh", |p| p.as_str()))
            .args(&config.args);
    for pair in &config.env {
        command = command.env(pair.get_name(), pair.get_value());
    }
    if let Some(dir) = &config.workdir_path {
        command = command.current_dir(dir.as_str());
    }
    let process = handle.exec(attach.command(command))?;
    attach.run(process)
}

pub(crate) fn timed_out(timeout: Option<Duration>) -> ExitCode {
    let secs = timeout.map_or(0.0, |t| t.as_secs_f64());
    errln!("monocore: timed out after {secs} s; the VM was killed");
    ExitCode::from(EXIT_TIMEOUT)
}

fn boot_or_other_failure(e: MonocoreError, report: &HostReport) -> ExitCode {
    if let MonocoreError::BootFailed { .. } = e {
        errln!("monocore: error: {e}\n");
        err!("{}", doctor_table(report));
        return ExitCode::from(EXIT_MONOCORE_FAILED);
    }
    fail(&e)
}

/// Waits for the VM to end, killing it on a stop signal or the timeout.
fn wait(handle: &mut VmHandle, timeout: Option<Duration>, report: &HostReport) -> ExitCode {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let outcome = handle.wait_timeout(Duration::from_millis(50));
        // A stop signal says what happened, whatever the VM did meanwhile
        // (a Ctrl-C on a terminal reaches the whole process group).
        if let Some(signal) = terminal::stop_signal() {
            let _ = handle.kill();
            return stopped_exit_code(signal, "the VM was killed");
        }
        match outcome {
            Ok(Some(status)) => return exit_code_of(status),
            Ok(None) => {}
            Err(e) => return boot_or_other_failure(e, report),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = handle.kill();
            return timed_out(timeout);
        }
    }
}
