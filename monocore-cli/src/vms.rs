//! `monocore exec`, `ps` and `stop`: VMs running in other `monocore run
//! --keep` processes, found by ID.

use crate::output::outln;
use std::{process::ExitCode, time::Duration};

use clap::Args;
use monocore::{
    config::EnvPair,
    vm::{GuestCommand, RunningVm},
};

use crate::{
    EXIT_MONOCORE_FAILED,
    attach::{Attach, Ended},
    fail,
    run::{exit_code_of, stopped_exit_code},
};

/// `monocore exec`.
#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// Forward this terminal's input to the command.
    #[arg(short = 'i', long)]
    interactive: bool,

    /// Give the command a terminal (use with -i for a shell).
    #[arg(short = 't', long)]
    tty: bool,

    /// Set an environment variable for the command (repeatable); it gets no
    /// other.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<EnvPair>,

    /// The command's working directory in the guest.
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,

    /// The VM's ID (or its first characters, at least 4), from `monocore ps`.
    id: String,

    /// The command to run and its arguments (no `--` needed: everything
    /// after CMD, flags too, is CMD's).
    #[arg(
        required = true,
        value_name = "CMD",
        trailing_var_arg = true,
        num_args = 1..
    )]
    command: Vec<String>,
}

/// `monocore stop`.
#[derive(Args, Debug)]
pub(crate) struct StopArgs {
    /// The VM's ID (or its first characters, at least 4), from `monocore ps`.
    id: String,
}

/// Runs a command in a running VM.
pub(crate) fn exec(args: ExecArgs) -> ExitCode {
    let vm = match RunningVm::find(&args.id) {
        Ok(vm) => vm,
        Err(e) => return fail(&e),
    };
    let mut parts = args.command.iter();
    let Some(program) = parts.next() else {
        return ExitCode::from(2);
    };
    let mut command = GuestCommand::new(program).args(parts);
    for pair in &args.env {
        command = command.env(pair.get_name(), pair.get_value());
    }
    if let Some(dir) = &args.workdir {
        command = command.current_dir(dir);
    }
    let attach = Attach {
        interactive: args.interactive,
        tty: args.tty,
        timeout: None,
    };
    let ended = vm
        .exec(attach.command(command))
        .and_then(|process| attach.run(process));
    match ended {
        Ok(Ended::Exited(status)) => exit_code_of(status),
        Ok(Ended::Stopped(signal)) => stopped_exit_code(signal, "the command was killed"),
        Ok(Ended::TimedOut) => ExitCode::from(EXIT_MONOCORE_FAILED),
        Err(e) => fail(&e),
    }
}

/// Lists the running VMs.
pub(crate) fn ps() -> ExitCode {
    let vms = match RunningVm::list() {
        Ok(vms) => vms,
        Err(e) => return fail(&e),
    };
    outln!("{:<20}  {:>8}  {:>8}  COMMAND", "ID", "PID", "UPTIME");
    for vm in vms {
        let pid = vm.pid().map_or("-".to_owned(), |p| p.to_string());
        let uptime = vm
            .uptime()
            .map_or("-".to_owned(), |d| format!("{}s", d.as_secs()));
        outln!(
            "{:<20}  {pid:>8}  {uptime:>8}  {}",
            vm.id(),
            vm.command().join(" ")
        );
    }
    ExitCode::SUCCESS
}

/// Stops a running VM.
pub(crate) fn stop(args: StopArgs) -> ExitCode {
    match RunningVm::find(&args.id).and_then(|vm| vm.shutdown(Duration::from_secs(60))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
