use std::process::ExitCode;

use monocore::{
    ErrorChain, MonocoreError,
    rootfs::RunRootfs,
    vm,
    vm::{MicroVm, SpawnOptions},
};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            // The error and each of its causes, by `Display`, one a line.
            eprintln!("error: {:#}", ErrorChain(&error));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, MonocoreError> {
    // A private copy of the default busybox root filesystem (prepared once
    // in ~/.cache/monocore), removed when `rootfs` is dropped.
    let rootfs = RunRootfs::busybox()?;
    let config = vm! {
        root: rootfs.path(),
        ram: 256,
        exec: "/bin/echo",
        args: ["Hello from inside a microVM"],
    };
    // The VM runs in a child process: this very program, which monocore
    // turns into the VM helper before `main` runs.
    let options = SpawnOptions::new().capture_console(true);
    let mut vm = MicroVm::from_config(config)?.spawn_with(&options)?;
    // The guest's exit status; a VM that fails to boot is an `Err`.
    let status = vm.wait()?;
    print!("{}", String::from_utf8_lossy(&vm.console_output()));
    println!("({status})");
    let code = status.code().and_then(|c| u8::try_from(c).ok());
    Ok(ExitCode::from(code.unwrap_or(1)))
}
