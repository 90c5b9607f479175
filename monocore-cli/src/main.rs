//! `monocore`: run untrusted code in a microVM with one command, and
//! diagnose the host.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0–255 | the guest command's exit code |
//! | 1 | `config check` found problems; `doctor` found a host that cannot boot a VM |
//! | 2 | bad command line (flags, an unreadable `--env-file`) |
//! | 124 | `--timeout` expired; the VM was killed |
//! | 125 | monocore itself failed (invalid config, host cannot boot a VM, VMM failure, stdout full) |
//! | 130, 143, 129, 131 | interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP or SIGQUIT; the VM was killed |
//! | 141 | stdout was a closed pipe (see `output`) |
//! | 128+N | the VM was killed by signal N from outside |

use crate::output::{errln, outln};
use std::{path::PathBuf, process::ExitCode};

mod attach;
mod cp;
mod doctor;
mod env_flags;
mod flag_errors;
mod image;
mod output;
mod pool_server;
mod pooled_run;
mod progress;
mod run;
mod run_args;
mod suggest;
mod terminal;
mod vms;

use clap::{CommandFactory, Parser, Subcommand};
use monocore::config::file::load_config;

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

    /// Also print each step on stderr (what is prepared and started).
    #[arg(long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a microVM and run CMD in it; exits with the guest's exit code.
    Run(Box<run_args::RunArgs>),
    /// Run a command in a VM kept running by `monocore run --keep`.
    Exec(vms::ExecArgs),
    /// Copy files between the host and a VM kept running by `monocore run --keep`.
    ///
    /// `cp SRC ID:PATH` copies a host file or tree into the VM, `cp ID:PATH
    /// DST` copies one out. A destination that is an existing directory
    /// receives the source under its own name (a source ending in `/.`
    /// gives its contents). Symlinks are copied as symlinks, never
    /// followed; a copy out takes at most 64 MiB and 65536 entries.
    Cp(cp::CpArgs),
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
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script: `monocore completions bash >
    /// ~/.local/share/bash-completion/completions/monocore`.
    Completions {
        /// The shell (any case).
        #[arg(value_enum, ignore_case = true)]
        shell: Shell,
    },
    /// Keep VMs booted ahead of need, for `monocore run --pool NAME`.
    #[command(subcommand)]
    Pool(pool_server::PoolCommand),
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

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => suggest::improve(e, &Cli::command(), &argv).exit(),
    };
    output::set_verbosity(cli.quiet, cli.verbose);
    let code = dispatch(cli);
    output::finish(code)
}

fn dispatch(cli: Cli) -> ExitCode {
    // However the command ends, the terminal's flags are as they were.
    let _stdio = terminal::StdioFlags::save();
    // Before the first side effect: a stop signal ends a run cleanly (the
    // VM killed, its files removed) with 128+N.
    if matches!(
        cli.command,
        Command::Run(_) | Command::Exec(_) | Command::Pool(_)
    ) && let Err(e) = terminal::install_handlers()
    {
        return fail(&e);
    }
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Exec(args) => vms::exec(args),
        Command::Pool(command) => pool_server::pool(command),
        Command::Cp(args) => cp::cp(args),
        Command::Ps => vms::ps(),
        Command::Stop(args) => vms::stop(args),
        Command::Pull(args) => image::pull(&args),
        Command::Images(args) => image::images(&args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Completions { shell } => completions(shell),
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

/// The shells `completions` writes a script for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

fn completions(shell: Shell) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    match shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "monocore",
            &mut script,
        ),
        Shell::Zsh => clap_complete::generate(
            clap_complete::Shell::Zsh,
            &mut command,
            "monocore",
            &mut script,
        ),
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut command,
            "monocore",
            &mut script,
        ),
    }
    outln!("{}", String::from_utf8_lossy(&script).trim_end());
    ExitCode::SUCCESS
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
