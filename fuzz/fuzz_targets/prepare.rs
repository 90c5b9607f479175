//! Valid means runnable: for arbitrary (bounded) configs that
//! `validate_values` accepts, with the root and the mapped directories'
//! host sides pointed at directories that exist, `MicroVm::prepare` (every
//! `krun_*` call short of `krun_start_enter`, with libkrunfw's kernel so no
//! host fact is involved) succeeds: no NUL, unsupported-setting or libkrun
//! `EINVAL` error for a validated config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monocore::{config::PathPair, kernel::KernelChoice, vm::MicroVm};
use monocore_fuzz::arb;

fuzz_target!(|input: arb::Config| {
    let mut config = input.to_config();
    // `net` involves host facts, not rules: prepare finds passt, resolves
    // the allow-list's names and binds the published ports.
    config.net = false;
    config.allow.clear();
    if config.validate_values().is_err() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    config.root_path = dir.path().to_path_buf();
    let host = dir.path().to_str().expect("utf-8 tempdir");
    for pair in &mut config.mapped_dirs {
        *pair = PathPair::with_distinct(host.into(), pair.get_guest().clone());
    }
    let vm = match MicroVm::from_config(config.clone()) {
        Ok(vm) => vm,
        Err(e) => panic!("validate_values accepted, validate refused: {e}: {config:?}"),
    };
    if let Err(e) = vm.prepare_with_kernel(&KernelChoice::Libkrunfw) {
        panic!("a validated config failed in prepare: {e}: {config:?}");
    }
});
