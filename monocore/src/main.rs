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

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use monocore::{
    config::{DEFAULT_RAM_MIB, EnvPair, PathPair, PortPair, file::load_config},
    vm::{LinuxRlimit, LogLevel, MicroVmConfig},
};

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
    Run(RunArgs),
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
    /// Root filesystem directory. Without it, a private copy of a minimal
    /// busybox rootfs (prepared once in the cache directory) is used.
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

    /// Forward a host port to a guest port (repeatable). No port is exposed
    /// unless given.
    #[arg(short = 'p', long = "port", value_name = "HOST:GUEST")]
    ports: Vec<PortPair>,

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
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,

    /// Write the guest console to FILE instead of this terminal.
    #[arg(long, value_name = "FILE")]
    console: Option<String>,

    /// VMM log level: off, error, warn, info, debug, trace (or 0-5).
    #[arg(long, value_name = "LEVEL", default_value = "off")]
    log_level: LogLevel,

    /// Validate and print the config as JSON instead of booting.
    #[arg(long)]
    dry_run: bool,

    /// The command to run in the guest, and its arguments. Default: print a
    /// hello message from inside the guest.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Doctor => doctor(),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("monocore: error: {message}");
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
        "echo \"Hello from inside a monocore microVM (kernel $(uname -r), $(nproc) vCPU)\"".into(),
    ]
}

fn build_config(args: &RunArgs, root: PathBuf) -> MicroVmConfig {
    let mut command = if args.command.is_empty() {
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
    let (root, _private_copy) = match &args.root {
        Some(root) => (root.clone(), None),
        None => match monocore::rootfs::prepare_template().and_then(|t| {
            monocore::rootfs::RunRootfs::copy_of(&t, &monocore::rootfs::cache_dir().join("runs"))
        }) {
            Ok(copy) => (copy.path().to_path_buf(), Some(copy)),
            Err(e) => return fail(e),
        },
    };
    let config = build_config(&args, root);
    if let Err(e) = config.validate() {
        return fail(e);
    }
    if args.dry_run {
        return match serde_json::to_string_pretty(&config) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    fail("booting is not wired up yet in this build (see issue 5)")
}

fn doctor() -> ExitCode {
    fail("doctor is not wired up yet in this build (see issue 5)")
}
