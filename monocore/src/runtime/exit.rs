//! How a spawned VM ended: [`VmExitStatus`], and telling a guest exit from
//! a VMM failure and a command's exit from a guest set-up failure.

use std::{fmt, os::unix::process::ExitStatusExt, process::ExitStatus};

use monocore_agent::report::Report;

use super::{monitor::Shared, protocol::ExitSource};
use crate::error::{HelperError, MonocoreError, MonocoreResult, ReportError};

/// How a spawned VM ended: the guest's exit code, or the signal that killed
/// the VM (after [`VmHandle::kill`], or from outside).
///
/// A VM that failed to boot is not a `VmExitStatus` but
/// [`MonocoreError::BootFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExitStatus {
    code: Option<i32>,
    signal: Option<i32>,
}

impl VmExitStatus {
    pub(crate) fn from_parts(code: Option<i32>, signal: Option<i32>) -> Self {
        Self { code, signal }
    }

    /// The guest's exit code; `None` if the VM was killed.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the VM, if it was killed.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// `true` when the guest exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for VmExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "guest exited with code {code}"),
            (None, Some(signal)) => write!(f, "VM killed by signal {signal}"),
            (None, None) => f.write_str("VM ended"),
        }
    }
}

/// Tells a guest exit from a VMM failure, and a command's exit from a guest
/// set-up failure (the agent's `report`). See the `helper` module docs.
pub(crate) fn classify(
    status: ExitStatus,
    killed: bool,
    state: &Shared,
    report: Result<Report, ReportError>,
) -> MonocoreResult<VmExitStatus> {
    if let Some(time_to_live) = state.expired {
        return Err(MonocoreError::VmExpired { time_to_live });
    }
    if let Some(failure) = &state.failure {
        return Err(failure.clone().into_error());
    }
    let last_line = || {
        state
            .last_vmm_error
            .clone()
            .or_else(|| state.last_kernel_line.clone())
            .or_else(|| state.tail.back().cloned())
            .unwrap_or_else(|| "(the VMM printed nothing)".to_owned())
    };
    if let Some(signal) = status.signal() {
        if killed || signal == libc::SIGKILL || signal == libc::SIGTERM {
            return Ok(VmExitStatus {
                code: None,
                signal: Some(signal),
            });
        }
        return Err(MonocoreError::BootFailed {
            last_error_line: format!(
                "the VMM was killed by signal {signal}; last line: {}",
                last_line()
            ),
            vmm_exit_code: 128 + signal,
        });
    }
    let code = status.code().unwrap_or(-1);
    match state.exit_source {
        Some(ExitSource::Guest(guest)) => match report {
            Ok(Report::Ready) => Ok(VmExitStatus {
                code: Some(guest),
                signal: None,
            }),
            Ok(Report::Failed {
                step,
                errno,
                detail,
            }) => Err(MonocoreError::GuestSetup {
                step,
                errno,
                detail,
            }),
            Err(reason) => Err(MonocoreError::GuestAgentSilent {
                exit_code: guest,
                reason,
            }),
        },
        Some(ExitSource::Vcpu(_)) => Err(MonocoreError::BootFailed {
            last_error_line: last_line(),
            vmm_exit_code: code,
        }),
        None if state.entered_at.is_none() => Err(HelperError::Exited {
            code,
            last_line: last_line(),
        }
        .into()),
        None => Err(MonocoreError::BootFailed {
            last_error_line: last_line(),
            vmm_exit_code: code,
        }),
    }
}

#[cfg(test)]
mod tests;
