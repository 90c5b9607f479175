//! `monocore._monocore`: the native half of the `monocore` Python package.
//!
//! A thin layer over the monocore library: a [`sandbox::Vm`] is a
//! [`VmHandle`](monocore::vm::VmHandle) spawned idle, and its methods are
//! `VmHandle`'s. The pure-Python package (`python/monocore/`) gives it its
//! Python shape (`Sandbox`, `Result`, `files`).
//!
//! # The VM helper
//!
//! monocore runs each VM in a child process that is normally the program
//! itself, recognised by an ELF constructor in the executable. Here the
//! program is a Python interpreter, and monocore is in this shared library,
//! so the documented equivalent is used: a separate helper
//! ([`SpawnOptions::helper_path`](monocore::vm::SpawnOptions::helper_path)),
//! which is the same interpreter running `monocore/_helper.py`, whose one
//! call is [`helper_main`] below (`monocore::vm::helper_main`). The Python
//! side builds that command line (`monocore._helper.command`).

use pyo3::prelude::*;

mod boot;
mod errors;
mod host;
mod machine;
mod pool;
mod sandbox;
mod supervise;

/// Runs this process as a monocore VM helper: reads the request from
/// stdin, enters the VM and never returns on success (the VMM ends the
/// process with the guest's exit code). Returns the exit code of a helper
/// that failed before entering the VM, after reporting the failure to its
/// parent.
#[pyfunction]
fn helper_main() -> u8 {
    let code = monocore::vm::helper_main();
    // `ExitCode` does not give its value back; it is one of 256.
    (0..=u8::MAX)
        .find(|n| std::process::ExitCode::from(*n) == code)
        .unwrap_or(1)
}

/// The native module.
#[pymodule]
fn _monocore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(helper_main, m)?)?;
    m.add_function(wrap_pyfunction!(host::doctor, m)?)?;
    m.add_class::<sandbox::Vm>()?;
    m.add_class::<pool::Pool>()?;
    Ok(())
}
