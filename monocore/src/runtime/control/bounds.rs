//! How long the host waits for the guest agent: every read from the
//! control channel is bounded, so a VM that stops answering (frozen,
//! stopped, overloaded past reason, or an agent that no longer serves)
//! surfaces as [`ControlError::Unresponsive`] instead of a hang.
//!
//! - `Hello` (and the requests of a session of its own, below) is answered
//!   within [`ANSWER`]; `Exec` (with `Started`), `Prepare` and `Discard`
//!   (with `Done`), for which the agent forks a command or builds a
//!   container first, within [`WORK`].
//! - A running command's connection is watched by a thread of its own
//!   (`watch`): after [`PING_AFTER`] without a frame from the agent it sends
//!   `Ping`, and the agent's session answers `Pong` (any frame will do);
//!   none within [`PONG`] and the command is lost: its handle's `wait`
//!   returns the error and its output streams end. While this side holds
//!   the connection up itself (output not yet read from a piped stream, or
//!   input the command does not read), silence proves nothing: the output
//!   case is not judged, and in the input case the agent is asked on a
//!   session of its own (connect, `Hello`, `Ping`), which the held-up one
//!   does not block.
//! - A kill (a command's timeout, an abort) goes on the command's own
//!   connection; if no `Exited` follows within [`KILL_RETRY`] (its session
//!   may be held up by input the command does not read), again on a
//!   session of its own; and with no `Exited` within [`KILL_GRACE`] of the
//!   first, the handle gives up on the command.
//!
//! [`ControlError::Unresponsive`]: crate::error::ControlError::Unresponsive

use std::time::Duration;

/// How long the agent has to answer `Hello`, and a session of its own.
pub(crate) const ANSWER: Duration = Duration::from_secs(15);
/// How long the agent has to answer `Exec`, `Prepare` or `Discard`.
pub(crate) const WORK: Duration = Duration::from_secs(30);
/// How long a running command's connection may be silent before a `Ping`.
pub(crate) const PING_AFTER: Duration = Duration::from_secs(2);
/// How long the agent has to answer a `Ping`.
pub(crate) const PONG: Duration = Duration::from_secs(5);
/// How long after a kill the kill is sent again on a session of its own.
pub(crate) const KILL_RETRY: Duration = Duration::from_secs(1);
/// How long after a kill the agent has to report the command's end.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// The bounds one command is held to: the constants above, shorter in
/// tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) answer: Duration,
    pub(crate) work: Duration,
    pub(crate) ping_after: Duration,
    pub(crate) pong: Duration,
    pub(crate) kill_retry: Duration,
    pub(crate) kill_grace: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            answer: ANSWER,
            work: WORK,
            ping_after: PING_AFTER,
            pong: PONG,
            kill_retry: KILL_RETRY,
            kill_grace: KILL_GRACE,
        }
    }
}

/// Whether an I/O error is a socket timeout running out.
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
