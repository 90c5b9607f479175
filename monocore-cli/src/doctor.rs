//! `monocore doctor`: can this host boot microVMs, and how to fix it.

use crate::output::outln;
use std::process::ExitCode;

use monocore::doctor::json as doctor_json;
pub(crate) use monocore::doctor::table as doctor_table;

/// `monocore doctor [--json]`.
#[derive(clap::Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Print the report as JSON: can_boot, verdict, kernel, checks (check,
    /// ok, detail), problems (problem, fix), cpus, memory_total_mib,
    /// memory_available_mib.
    #[arg(long)]
    json: bool,
}

pub(crate) fn doctor(args: &DoctorArgs) -> ExitCode {
    let report = monocore::host::check();
    if args.json {
        outln!("{:#}", doctor_json(&report));
    } else {
        outln!("monocore doctor\n{}", doctor_table(&report).trim_end());
    }
    if report.can_boot() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
