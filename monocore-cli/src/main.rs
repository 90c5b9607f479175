//! `monocore`: run untrusted code in a microVM with one command, and
//! diagnose the host.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0–123 (and others the guest uses) | the guest command's exit code |
//! | 1 | `config check` found problems; `doctor` found a host that cannot boot a VM |
//! | 2 | bad command-line flags |
//! | 124 | `--timeout` expired; the VM was killed |
//! | 125 | monocore itself failed (invalid config, host cannot boot a VM, VMM failure) |
//! | 130 | interrupted by Ctrl-C (SIGINT); the VM was killed |
//! | 143 | terminated by SIGTERM; the VM was killed |
//! | 128+N | the VM was killed by signal N from outside |

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::atomic::{AtomicI32, Ordering},
    time::{Duration, Instant},
};

mod flag_errors;
mod image;

use clap::{Args, Parser, Subcommand};
use monocore::{
    MonocoreError,
    config::{DEFAULT_RAM_MIB, EnvPair, PathPair, PortPair, file::load_config},
    host::{BootKernel, HostProblem, HostReport},
    kernel::KernelChoice,
    rootfs::RunRootfs,
    vm::{LinuxRlimit, LogLevel, MicroVm, MicroVmConfig, SpawnOptions, VmExitStatus},
};

/// Exit code when `--timeout` expired.
const EXIT_TIMEOUT: u8 = 124;
/// Exit code after SIGINT (Ctrl-C): 128 + 2.
const EXIT_SIGINT: u8 = 130;
/// Exit code after SIGTERM: 128 + 15.
const EXIT_SIGTERM: u8 = 143;

/// Exit code when monocore itself fails before or while booting.
const EXIT_MONOCORE_FAILED: u8 = 125;

#[derive(Parser)]
#[command(
    name = "monocore",
    version,
    about = "Run untrusted code in secure microVMs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a microVM and run CMD in it; exits with the guest's exit code.
    Run(Box<RunArgs>),
    /// Pull an OCI image into the cache (and unpack it once).
    Pull(image::PullArgs),
    /// List cached images with their sizes; `rm` and `prune` free space.
    Images(image::ImagesArgs),
    /// Check whether this host can boot microVMs, and say how to fix it.
    Doctor,
    /// Work with TOML config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a TOML config file (same keys as `vm!`); prints every problem
    /// with its line and column and exits 1 if there is any.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// An OCI image to boot (`alpine:3.20`, `localhost:5000/app:v1`): pulled
    /// if not cached; the VM gets a private copy of its root, and its
    /// Entrypoint, Cmd, Env and WorkingDir under what the flags set.
    #[arg(value_name = "IMAGE", conflicts_with = "root")]
    image: Option<String>,

    #[command(flatten)]
    image_flags: image::RunImageFlags,

    /// Root filesystem directory. Without it (and without IMAGE), a private
    /// copy of a minimal busybox rootfs (prepared once in the cache
    /// directory) is used.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Guest memory in MiB.
    #[arg(long, value_name = "MiB", default_value_t = DEFAULT_RAM_MIB)]
    ram: u32,

    /// Number of vCPUs (1-255).
    #[arg(long, value_name = "N", default_value_t = monocore::config::DEFAULT_NUM_VCPUS)]
    cpus: u8,

    /// Share a host directory with the guest over virtio-fs (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "HOST:GUEST")]
    volumes: Vec<PathPair>,

    /// Forward a host port to a guest port (repeatable; needs --net).
    #[arg(short = 'p', long = "port", value_name = "HOST:GUEST")]
    ports: Vec<PortPair>,

    /// Give the guest network access through libkrun's TSI: it can connect
    /// to anything the host can reach and listen on host ports. Without it
    /// the guest has no network at all.
    #[arg(long)]
    net: bool,

    /// Set an environment variable in the guest (repeatable). The host's
    /// environment is never copied.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<EnvPair>,

    /// Guest working directory (absolute).
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,

    /// Resource limit for the guest command (repeatable).
    #[arg(long = "rlimit", value_name = "RLIMIT_X=SOFT:HARD")]
    rlimits: Vec<LinuxRlimit>,

    /// Kill the VM after this many seconds (exit code 124).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    timeout: Option<Duration>,

    /// Write the guest console to FILE instead of this terminal.
    #[arg(long, value_name = "FILE")]
    console: Option<String>,

    /// VMM log level: off, error, warn, info, debug, trace (or 0-5).
    #[arg(long, value_name = "LEVEL", default_value = "off")]
    log_level: LogLevel,

    /// Validate and print the config as JSON instead of booting. The config
    /// is checked against the kernel this host boots (on a host that cannot
    /// boot, against libkrunfw's).
    #[arg(long)]
    dry_run: bool,

    /// Try to boot even when `monocore doctor` says this host cannot.
    #[arg(long)]
    force: bool,

    /// Boot this ELF kernel (a vmlinux) instead of the one monocore picks
    /// (libkrunfw's, or on kvm_pvm hosts the compat kernel).
    #[arg(long, value_name = "VMLINUX")]
    kernel: Option<PathBuf>,

    /// The command to run in the guest, and its arguments. Default: print a
    /// hello message from inside the guest.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("{s:?} is not a number of seconds greater than 0")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Pull(args) => image::pull(&args),
        Command::Images(args) => image::images(&args),
        Command::Doctor => doctor(),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    }
}

/// Prints `error` and each of its causes (the `Display` chain), and returns
/// the exit code of a monocore failure.
fn fail(error: &dyn std::error::Error) -> ExitCode {
    fail_explained(&error.to_string(), error)
}

/// Like [`fail`], with `message` (the error in the user's terms) in place of
/// the error's own text; its causes follow.
fn fail_explained(message: &str, error: &dyn std::error::Error) -> ExitCode {
    eprintln!("monocore: error: {message}");
    let mut cause = error.source();
    while let Some(error) = cause {
        eprintln!("  caused by: {error}");
        cause = error.source();
    }
    ExitCode::from(EXIT_MONOCORE_FAILED)
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match load_config(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(monocore::MonocoreError::ConfigFile(errors)) => {
            for e in &errors.0 {
                eprintln!("{}:{e}", file.display());
            }
            eprintln!("{}: {} problem(s)", file.display(), errors.0.len());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

/// The default guest command: a hello message from inside the guest.
fn default_command() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo Hello from inside a monocore microVM: kernel $(uname -r), $(nproc) vCPU".into(),
    ]
}

fn build_config(args: &RunArgs, root: PathBuf) -> MicroVmConfig {
    let mut command = if args.command.is_empty() && args.image.is_none() {
        default_command()
    } else {
        args.command.clone()
    };
    let exec = if command.is_empty() {
        None
    } else {
        Some(command.remove(0))
    };
    let mut config = MicroVmConfig::new(root, args.ram);
    config.num_vcpus = args.cpus;
    config.mapped_dirs = args.volumes.clone();
    config.port_map = args.ports.clone();
    config.local_only = !args.net;
    config.env = args.env.clone();
    config.workdir_path = args.workdir.as_deref().map(Into::into);
    config.rlimits = args.rlimits.clone();
    config.console_output = args.console.as_deref().map(Into::into);
    config.log_level = args.log_level;
    config.exec_path = exec.map(Into::into);
    config.args = command;
    config
}

fn run(args: RunArgs) -> ExitCode {
    // Without --root: a private copy of the cached busybox template, removed
    // when this function returns (the guest can write to its rootfs).
    // With IMAGE: a private copy of the image's root, also removed then.
    let (root, _private_copy, image_root) = match (&args.root, &args.image) {
        (Some(root), _) => (root.clone(), None, None),
        (None, Some(reference)) => match image::run_rootfs(reference, &args.image_flags) {
            Ok(copy) => (copy.path().to_path_buf(), None, Some(copy)),
            Err(e) => return fail(&e),
        },
        (None, None) => match RunRootfs::busybox() {
            Ok(copy) => (copy.path().to_path_buf(), Some(copy), None),
            Err(e) => return fail(&e),
        },
    };
    let kernel = args
        .kernel
        .clone()
        .map_or(KernelChoice::Auto, KernelChoice::Elf);
    let mut config = build_config(&args, root);
    if let Some(rootfs) = &image_root
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
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let report = monocore::host::check();
    // With --kernel, what the host check says of the kernel it would pick
    // does not matter.
    let blocked = report
        .problems
        .iter()
        .any(|p| args.kernel.is_none() || !p.is_about_the_kernel());
    if blocked && !args.force {
        eprintln!("monocore: this host cannot boot microVMs, so none was started.\n");
        eprint!("{}", doctor_table(&report));
        eprintln!("\n(`monocore doctor` prints this report; `monocore run --force` tries anyway.)");
        return ExitCode::from(EXIT_MONOCORE_FAILED);
    }
    launch(&vm, kernel, args.timeout, &report)
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

/// The signal that asked us to stop (SIGINT or SIGTERM), or 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`STOP_SIGNAL`], so the VM is killed and
/// reaped before we exit instead of being orphaned.
fn install_stop_handlers() -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed `sigaction` is a valid starting value; the handler
        // is an `extern "C" fn(c_int)` that only stores to an atomic, which is
        // async-signal-safe; `sigaction` reads `action` during the call only.
        let status = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if status != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn exit_code_of(status: VmExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + (signal & 0x7f)).unwrap_or(1)),
        (None, None) => ExitCode::from(EXIT_MONOCORE_FAILED),
    }
}

fn launch(
    vm: &MicroVm,
    kernel: KernelChoice,
    timeout: Option<Duration>,
    report: &HostReport,
) -> ExitCode {
    if let Err(e) = install_stop_handlers() {
        eprintln!("monocore: error: cannot install signal handlers: {e}");
        return ExitCode::from(EXIT_MONOCORE_FAILED);
    }
    // The VM helper is this program itself (see `MicroVm::spawn`).
    let mut handle = match vm.spawn_with(&SpawnOptions::new().kernel(kernel)) {
        Ok(handle) => handle,
        Err(e) => return fail(&e),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match handle.wait_timeout(Duration::from_millis(50)) {
            Ok(Some(status)) => return exit_code_of(status),
            Ok(None) => {}
            Err(e @ MonocoreError::BootFailed { .. }) => {
                eprintln!("monocore: error: {e}\n");
                eprint!("{}", doctor_table(report));
                return ExitCode::from(EXIT_MONOCORE_FAILED);
            }
            Err(e) => return fail(&e),
        }
        let signal = STOP_SIGNAL.load(Ordering::SeqCst);
        if signal != 0 {
            let _ = handle.kill();
            eprintln!("monocore: interrupted (signal {signal}); the VM was killed");
            return ExitCode::from(if signal == libc::SIGTERM {
                EXIT_SIGTERM
            } else {
                EXIT_SIGINT
            });
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = handle.kill();
            let secs = timeout.map_or(0.0, |t| t.as_secs_f64());
            eprintln!("monocore: timed out after {secs} s; the VM was killed");
            return ExitCode::from(EXIT_TIMEOUT);
        }
    }
}

/// The host report as a short table, with the one-line fix for each problem.
fn doctor_table(report: &HostReport) -> String {
    let has = |p: &dyn Fn(&HostProblem) -> bool| report.problems.iter().find(|x| p(x));
    let mut rows: Vec<(&str, bool, String)> = Vec::new();
    let missing = has(&|p| matches!(p, HostProblem::KvmMissing));
    rows.push(match missing {
        Some(p) => ("KVM device", false, p.to_string()),
        None => ("KVM device", true, "/dev/kvm present".to_owned()),
    });
    if missing.is_none() {
        rows.push(
            match has(&|p| matches!(p, HostProblem::KvmNotAccessible { .. })) {
                Some(p) => ("KVM access", false, p.to_string()),
                None => ("KVM access", true, "/dev/kvm opens read-write".to_owned()),
            },
        );
        let pvm = monocore::kernel::host_is_pvm();
        rows.push(match (pvm, has(&|p| matches!(p, HostProblem::NestedPvm { .. }))) {
            (false, _) => ("KVM kind", true, "hardware-assisted KVM".to_owned()),
            (true, found) => (
                "KVM kind",
                found.is_none(),
                "nested paravirtualized KVM (kvm_pvm): stock guest kernels fail with KVM_EXIT_INTERNAL_ERROR; only the compat kernel boots".to_owned(),
            ),
        });
    }
    let kernel_problem = has(&|p| p.is_about_the_kernel());
    rows.push(match (&report.kernel, kernel_problem) {
        (_, Some(HostProblem::NestedPvm { compat })) => ("guest kernel", false, compat.to_string()),
        (_, Some(p)) => ("guest kernel", false, p.to_string()),
        (Some(BootKernel::Libkrunfw), None) => (
            "guest kernel",
            true,
            format!("{} loads", monocore::host::LIBKRUNFW),
        ),
        (Some(kernel), None) => ("guest kernel", true, kernel.to_string()),
        (None, None) => ("guest kernel", true, "not checked".to_owned()),
    });
    rows.push(("CPUs", report.cpus > 0, report.cpus.to_string()));
    rows.push(("memory", true, report.memory_summary()));

    let mut out = String::new();
    for (check, ok, detail) in rows {
        out.push_str(&format!(
            "  {check:<13} {:<5} {detail}\n",
            if ok { "ok" } else { "FAIL" }
        ));
    }
    if let (true, Some(BootKernel::Compat(_))) = (report.can_boot(), &report.kernel) {
        out.push_str(&format!(
            "\nverdict: this host can boot microVMs (compat kernel, slow: ~{} s per boot)\n",
            monocore::kernel::COMPAT_BOOT_SECONDS
        ));
    } else if report.can_boot() {
        out.push_str("\nverdict: this host can boot microVMs\n");
    } else {
        out.push_str("\nverdict: microVMs cannot boot on this host\n");
        for problem in &report.problems {
            out.push_str(&format!("  fix: {}\n", problem.fix()));
        }
    }
    out
}

fn doctor() -> ExitCode {
    let report = monocore::host::check();
    print!("monocore doctor\n{}", doctor_table(&report));
    if report.can_boot() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
