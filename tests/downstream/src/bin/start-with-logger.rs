//! A program that sets a `log` logger, then runs a VM in this process with
//! `MicroVm::start` on a config that cannot boot: its console file would be
//! in a directory that does not exist, so libkrun's VM builder fails inside
//! `krun_start_enter`. `start` must return that error: no panic, no abort.
//!
//! Exit codes: 0 when `start()` returned libkrun's error and the program's
//! logger received the VMM's records; 3 when this host has no guest kernel
//! to get that far (the reason is printed); 1 otherwise.

use std::{
    process::ExitCode,
    sync::atomic::{AtomicUsize, Ordering},
};

use monocore::{
    MonocoreError,
    rootfs::RunRootfs,
    vm::{MicroVm, MicroVmConfig},
};

static VMM_RECORDS: AtomicUsize = AtomicUsize::new(0);

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target().starts_with("krun") {
            VMM_RECORDS.fetch_add(1, Ordering::SeqCst);
        }
        eprintln!("program's logger: {} {}", record.target(), record.args());
    }
    fn flush(&self) {}
}

fn main() -> ExitCode {
    log::set_logger(&Logger).expect("the first logger");
    log::set_max_level(log::LevelFilter::Info);
    let rootfs = match RunRootfs::busybox() {
        Ok(rootfs) => rootfs,
        Err(e) => {
            println!("no rootfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = MicroVmConfig::new(rootfs.path(), 128);
    config.exec_path = Some("/bin/true".into());
    let console = rootfs.path().join("no/such/dir/console.log");
    config.console_output = Some(console.to_str().expect("a UTF-8 path").into());
    let vm = match MicroVm::from_config(config) {
        Ok(vm) => vm,
        Err(e) => {
            println!("invalid config: {e}");
            return ExitCode::FAILURE;
        }
    };
    match vm.start() {
        Ok(never) => match never {},
        Err(e @ MonocoreError::Kernel { .. }) => {
            println!("{e}");
            ExitCode::from(3)
        }
        Err(
            e @ MonocoreError::Krun {
                call: "krun_start_enter",
                ..
            },
        ) => {
            let records = VMM_RECORDS.load(Ordering::SeqCst);
            println!("start() returned: {e}");
            println!("the program's logger got {records} VMM record(s)");
            if records > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("start() returned an unexpected error: {e}");
            ExitCode::FAILURE
        }
    }
}
