//! [`MonocoreError`] as the Python exceptions of `monocore/_errors.py`.
//!
//! The classes are defined in Python (so that `ConfigError` can also be a
//! `ValueError`, and `CommandTimedOut` a `TimeoutError`); this module picks
//! one by the error's variant and sets its attributes from the error's
//! structured fields, never from its message text.

use monocore::{ErrorChain, InvalidMicroVmConfigError, MonocoreError, error::PoolError};
use pyo3::{prelude::*, types::PyBytes};

/// Output a command wrote before it failed (for `CommandTimedOut`).
#[derive(Debug, Default)]
pub(crate) struct Partial {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// The Python exception for `error`; `partial` is the output read until
/// then, when a command was running.
pub(crate) fn to_py(py: Python<'_>, error: MonocoreError, partial: Partial) -> PyErr {
    match build(py, &error, partial) {
        Ok(err) => err,
        // The classes could not be made (the package is broken): still an
        // exception, with the message.
        Err(err) => err,
    }
}

fn build(py: Python<'_>, error: &MonocoreError, partial: Partial) -> PyResult<PyErr> {
    let message = ErrorChain(error).to_string();
    let module = py.import("monocore._errors")?;
    let (class, attrs): (&str, Vec<(&str, Py<PyAny>)>) = match error {
        MonocoreError::InvalidMicroVmConfig(invalid) => {
            ("ConfigError", config_attrs(py, invalid, false)?)
        }
        MonocoreError::HostCannotRun(invalid) => ("ConfigError", config_attrs(py, invalid, true)?),
        MonocoreError::InvalidPathPair(_)
        | MonocoreError::InvalidPortPair(_)
        | MonocoreError::InvalidEnvPair(_)
        | MonocoreError::InvalidRlimit(_)
        | MonocoreError::InvalidLogLevel(_)
        | MonocoreError::InvalidAllowEntry(_)
        | MonocoreError::ConfigFile(_) => ("ConfigError", Vec::new()),
        MonocoreError::GuestCommand(_) => ("CommandError", Vec::new()),
        MonocoreError::CommandTimedOut {
            timeout, confirmed, ..
        } => (
            "CommandTimedOut",
            vec![
                (
                    "timeout",
                    timeout.as_secs_f64().into_pyobject(py)?.into_any().unbind(),
                ),
                (
                    "confirmed",
                    confirmed.into_pyobject(py)?.to_owned().into_any().unbind(),
                ),
                (
                    "stdout",
                    PyBytes::new(py, &partial.stdout).into_any().unbind(),
                ),
                (
                    "stderr",
                    PyBytes::new(py, &partial.stderr).into_any().unbind(),
                ),
            ],
        ),
        MonocoreError::VmExpired { time_to_live } => (
            "VmExpired",
            vec![(
                "time_to_live",
                time_to_live
                    .as_secs_f64()
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
            )],
        ),
        MonocoreError::HostCannotBoot { .. } | MonocoreError::Kernel(_) => {
            ("HostCannotBoot", Vec::new())
        }
        MonocoreError::BootFailed { vmm_exit_code, .. } => (
            "BootFailed",
            vec![(
                "vmm_exit_code",
                vmm_exit_code.into_pyobject(py)?.into_any().unbind(),
            )],
        ),
        MonocoreError::GuestFile(_) => ("GuestFileError", Vec::new()),
        MonocoreError::Control(_) => ("ControlError", Vec::new()),
        MonocoreError::Pool(pool) => return pool_error(py, &module, pool, message),
        _ => ("MonocoreError", Vec::new()),
    };
    let value = module.getattr(class)?.call1((message,))?;
    for (name, attr) in attrs {
        value.setattr(name, attr)?;
    }
    Ok(PyErr::from_value(value))
}

/// `field`, `index`, `path` and `host` of a `ConfigError`, from the
/// error's structured place.
fn config_attrs(
    py: Python<'_>,
    invalid: &InvalidMicroVmConfigError,
    host: bool,
) -> PyResult<Vec<(&'static str, Py<PyAny>)>> {
    Ok(vec![
        (
            "field",
            invalid
                .at
                .field
                .key()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        ),
        (
            "index",
            invalid.at.index.into_pyobject(py)?.into_any().unbind(),
        ),
        (
            "path",
            invalid
                .at
                .to_string()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        ),
        (
            "reason",
            invalid.message().into_pyobject(py)?.into_any().unbind(),
        ),
        (
            "host",
            host.into_pyobject(py)?.to_owned().into_any().unbind(),
        ),
    ])
}

/// A `ConfigError` about `field` that the Python layer found (a value no
/// monocore config has, such as both a root and an image).
pub(crate) fn config_error(py: Python<'_>, field: &str, reason: &str) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let value = py
            .import("monocore._errors")?
            .getattr("ConfigError")?
            .call1((format!("{field}: {reason}"),))?;
        value.setattr("field", field)?;
        value.setattr("path", field)?;
        value.setattr("reason", reason)?;
        Ok(PyErr::from_value(value))
    })();
    made.unwrap_or_else(|err| err)
}

/// A `PoolError` (or `PoolEmpty`) with `kind`, and `field`, `asked` and
/// `limit` where the error has them. A failed boot is the boot's own
/// exception, with the pool's message.
fn pool_error(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    error: &PoolError,
    message: String,
) -> PyResult<PyErr> {
    let (class, kind, field, asked, limit): (&str, &str, Option<&str>, Option<u64>, Option<u64>) =
        match error {
            PoolError::Size { size, max } => (
                "PoolError",
                "size",
                Some("size"),
                u64::try_from(*size).ok(),
                u64::try_from(*max).ok(),
            ),
            PoolError::RamTooLarge { asked, pool } => (
                "PoolError",
                "ram_too_large",
                Some("ram"),
                Some(u64::from(*asked)),
                Some(u64::from(*pool)),
            ),
            PoolError::TooManyVcpus { asked, pool } => (
                "PoolError",
                "too_many_vcpus",
                Some("vcpus"),
                Some(u64::from(*asked)),
                Some(u64::from(*pool)),
            ),
            PoolError::Unsupported { field, .. } => {
                ("PoolError", "unsupported", Some(field.key()), None, None)
            }
            PoolError::Empty { .. } => ("PoolEmpty", "empty", None, None, None),
            PoolError::Closed => ("PoolError", "closed", None, None, None),
            PoolError::Boot(cause) => return build(py, cause, Partial::default()),
            _ => ("PoolError", "other", None, None, None),
        };
    let value = module.getattr(class)?.call1((message,))?;
    value.setattr("kind", kind)?;
    value.setattr("field", field)?;
    value.setattr("asked", asked)?;
    value.setattr("limit", limit)?;
    Ok(PyErr::from_value(value))
}

/// `error`'s exception, located at entry `index` of the list `field` (for
/// a value parsed on its own, which does not know where it came from).
pub(crate) fn located(py: Python<'_>, error: MonocoreError, field: &str, index: usize) -> PyErr {
    let err = to_py(py, error, Partial::default());
    let value = err.value(py);
    let located = value
        .setattr("field", field)
        .and_then(|()| value.setattr("index", index))
        .and_then(|()| value.setattr("path", format!("{field}[{index}]")));
    match located {
        Ok(()) => err,
        Err(failed) => failed,
    }
}
