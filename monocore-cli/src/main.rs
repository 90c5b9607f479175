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
//! | 130, 143, 129, 131 | interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP or SIGQUIT; the VM was killed |
//! | 128+N | the VM was killed by signal N from outside |

use crate::output::{errln, outln};
use std::{path::PathBuf, process::ExitCode, time::Duration};

mod attach;
mod doctor;
mod flag_errors;
mod image;
mod output;
mod progress;
mod run;
mod terminal;
mod vms;

use clap::{Args, Parser, Subcommand};
use monocore::{
    config::{DEFAULT_RAM_MIB, EnvPair, PathPair, PortPair, file::load_config},
    vm::{LinuxRlimit, LogLevel},
};

/// Exit code when `--timeout` expired.
pub(crate) const EXIT_TIMEOUT: u8 = 124;
/// Exit code when monocore itself fails before or while booting.
pub(crate) const EXIT_MONOCORE_FAILED: u8 = 125;

#[derive(Parser)]
#[command(
    name = "monocore",
    version,
    about = "Run untrusted code in secure microVMs"
)]
struct Cli {
    /// Print nothing on stderr but errors (no notes, no progress).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Also print each step on stderr (what is prepared, started, killed).
    #[arg(long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a microVM and run CMD in it; exits with the guest's exit code.
    Run(Box<RunArgs>),
    /// Run a command in a VM kept running by `monocore run --keep`.
    Exec(vms::ExecArgs),
    /// List the running VMs (those of `monocore run --keep`, and every other
    /// VM of this user).
    Ps,
    /// End a VM kept running by `monocore run --keep`.
    Stop(vms::StopArgs),
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
pub(crate) struct RunArgs {
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

    /// Forward this terminal's input to the command (it then runs over the
    /// VM's control channel instead of on the console).
    #[arg(short = 'i', long)]
    interactive: bool,

    /// Give the command a terminal: a pseudo-terminal in the guest, this
    /// terminal in raw mode meanwhile (`-it` for a shell; ^C goes to the
    /// guest).
    #[arg(short = 't', long)]
    tty: bool,

    /// Keep the VM running after the command ends, until `monocore stop ID`;
    /// `monocore exec ID -- CMD` runs more commands in it. The ID is printed
    /// on stderr, and `monocore ps` lists it.
    #[arg(long)]
    keep: bool,

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
    output::set_verbosity(cli.quiet, cli.verbose);
    let code = dispatch(cli);
    output::finish(code)
}

fn dispatch(cli: Cli) -> ExitCode {
    // However the command ends, the terminal's flags are as they were.
    let _stdio = terminal::StdioFlags::save();
    // Before the first side effect: a stop signal ends a run cleanly (the
    // VM killed, its files removed) with 128+N.
    if matches!(cli.command, Command::Run(_) | Command::Exec(_))
        && let Err(e) = terminal::install_handlers()
    {
        return fail(&e);
    }
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Exec(args) => vms::exec(args),
        Command::Ps => vms::ps(),
        Command::Stop(args) => vms::stop(args),
        Command::Pull(args) => image::pull(&args),
        Command::Images(args) => image::images(&args),
        Command::Doctor => doctor::doctor(),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    }
}

/// Prints `error` and each of its causes (the `Display` chain), and returns
/// the exit code of a monocore failure.
pub(crate) fn fail(error: &dyn std::error::Error) -> ExitCode {
    fail_explained(&error.to_string(), error)
}

/// Like [`fail`], with `message` (the error in the user's terms) in place of
/// the error's own text; its causes follow.
pub(crate) fn fail_explained(message: &str, error: &dyn std::error::Error) -> ExitCode {
    errln!("monocore: error: {message}");
    let mut cause = error.source();
    while let Some(error) = cause {
        errln!("  caused by: {error}");
        cause = error.source();
    }
    ExitCode::from(EXIT_MONOCORE_FAILED)
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match load_config(file) {
        Ok(_) => {
            outln!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(monocore::MonocoreError::ConfigFile(errors)) => {
            for e in &errors.0 {
                errln!("{}:{e}", file.display());
            }
            errln!("{}: {} problem(s)", file.display(), errors.0.len());
            ExitCode::from(1)
        }
        Err(e) => {
            errln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}
