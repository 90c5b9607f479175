//! Running more commands in a running VM ([`VmHandle::exec`] and
//! [`GuestProcess`]) and moving files in and out of it ([`GuestFiles`]),
//! over the guest agent's control channel.
//!
//! Each VM's agent listens on a vsock port that libkrun maps to a Unix
//! socket in the VM's run directory on the host (outside the directory the
//! guest shares, so the guest cannot replace it). A [`GuestProcess`] is one
//! connection: the command, its input, its output and its exit status
//! (see `monocore_agent::control` for the protocol). Everything the agent
//! sends is hostile input: frames are bounded before they are read, and
//! nothing the guest sends names a host path or a host command. Every
//! read is bounded in time too (see [`bounds`]).
//!
//! [`VmHandle::exec`]: crate::vm::VmHandle::exec

pub(crate) mod bounds;
mod channel;
mod command;
mod container;
mod files;
mod output;
mod process;
mod watch;

use std::{
    ffi::OsStr,
    io,
    os::unix::{ffi::OsStrExt, net::UnixStream},
    path::Path,
    time::{Duration, Instant},
};

use monocore_agent::control::{AgentMessage, HostMessage, VERSION};

pub use command::{GuestCommand, GuestOutput, GuestOutputs};
pub use container::GuestContainer;
pub use files::{CopySummary, GuestFileKind, GuestFiles, GuestMetadata};
pub use process::{GuestProcess, GuestSignaller, GuestStdin};

use crate::error::{
    ControlError, GuestCommandError, GuestCommandField, MonocoreError, MonocoreResult,
};

/// Connects to the agent behind `socket` and exchanges `Hello`s. The agent
/// starts listening only once the VM has booted; until then libkrun closes
/// each connection (or holds it unanswered), so this retries until
/// `deadline`, or until `alive` says the VM has ended. Once `booted` says
/// the agent has been listening, a `Hello` not answered within `answer` is
/// [`ControlError::Unresponsive`] at once.
pub(crate) fn connect(
    socket: &Path,
    deadline: Instant,
    alive: &mut dyn FnMut() -> bool,
    booted: &mut dyn FnMut() -> bool,
    answer: Duration,
) -> MonocoreResult<UnixStream> {
    let mut pause = Duration::from_millis(20);
    loop {
        let wait = answer.min(deadline.saturating_duration_since(Instant::now()));
        match hello(socket, wait.max(Duration::from_millis(1))) {
            Ok(Some(conn)) => return Ok(conn),
            Ok(None) => {}
            Err(e @ ControlError::Unresponsive { .. }) if booted() => return Err(e.into()),
            Err(ControlError::Unresponsive { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if !alive() {
            return Err(ControlError::EndedBeforeAnswer.into());
        }
        if Instant::now() >= deadline {
            return Err(ControlError::NoAnswer {
                socket: socket.to_path_buf(),
            }
            .into());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// One attempt at [`connect`]: `None` when the agent is not listening yet.
fn hello(socket: &Path, answer: Duration) -> Result<Option<UnixStream>, ControlError> {
    match channel::connect_unix(socket) {
        Ok(conn) => greet(conn, answer),
        Err(e) if bounds::is_timeout(&e) => Err(ControlError::Unresponsive {
            request: "Hello",
            waited: Duration::ZERO,
        }),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The `Hello` exchange on a fresh connection: `None` when the agent is not
/// listening yet. libkrun accepts every connection on the VM's socket and
/// only then asks the guest; while nothing listens there it closes the
/// connection, which shows up as a broken pipe if our `Hello` is written
/// after the close (a slow or busy host), or as an end or reset when it is
/// read. Each read and write is bounded by `answer` (and stays so on the
/// connection returned): one that runs out is `Unresponsive`.
fn greet(mut conn: UnixStream, answer: Duration) -> Result<Option<UnixStream>, ControlError> {
    use monocore_agent::control::ControlError as Wire;
    conn.set_read_timeout(Some(answer))?;
    conn.set_write_timeout(Some(answer))?;
    let unresponsive = ControlError::Unresponsive {
        request: "Hello",
        waited: answer,
    };
    let not_ready = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        )
    };
    let hello = HostMessage::Hello { version: VERSION };
    match hello.write(&mut conn) {
        Ok(()) => {}
        Err(Wire::Io(e)) if not_ready(&e) => return Ok(None),
        Err(Wire::Io(e)) if bounds::is_timeout(&e) => return Err(unresponsive),
        Err(e) => return Err(e.into()),
    }
    match AgentMessage::read(&mut conn) {
        Ok(Some(AgentMessage::Hello { version: VERSION })) => Ok(Some(conn)),
        Ok(Some(AgentMessage::Hello { version })) => Err(ControlError::Version {
            agent: version,
            host: VERSION,
        }),
        Ok(None) | Err(Wire::Truncated) => Ok(None),
        Err(Wire::Io(e)) if not_ready(&e) => Ok(None),
        Err(Wire::Io(e)) if bounds::is_timeout(&e) => Err(unresponsive),
        Ok(Some(other)) => Err(ControlError::Unexpected {
            request: "Hello",
            got: kind_name(&other),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Asks the agent behind `conn` to end the VM.
pub(crate) fn shutdown(mut conn: UnixStream) -> MonocoreResult<()> {
    HostMessage::Shutdown
        .write(&mut conn)
        .map_err(|e| ControlError::from(e).into())
}

/// Starts `command` on the agent behind `conn` (from [`connect`], through
/// `socket`, which a kill or a check of the agent may use for a session of
/// its own).
pub(crate) fn start(
    mut conn: UnixStream,
    command: GuestCommand,
    socket: &Path,
) -> MonocoreResult<GuestProcess> {
    command.validate()?;
    let answer = request(
        &mut conn,
        &HostMessage::Exec(Box::new(command.request.clone())),
        command.bounds.work,
    )?;
    match answer {
        Some(AgentMessage::Started { pid }) => {
            // From here on the command's watch bounds the connection.
            conn.set_read_timeout(None)?;
            conn.set_write_timeout(None)?;
            GuestProcess::start(conn, pid, &command, Some(socket.to_path_buf()))
        }
        other => Err(refusal(other, "Exec")),
    }
}

/// Sends `message` and reads the answer, each within `answer`.
fn request(
    conn: &mut UnixStream,
    message: &HostMessage,
    answer: Duration,
) -> Result<Option<AgentMessage>, ControlError> {
    conn.set_read_timeout(Some(answer))?;
    conn.set_write_timeout(Some(answer))?;
    let result = message.write(conn).and_then(|()| AgentMessage::read(conn));
    match result {
        Ok(answer) => Ok(answer),
        Err(monocore_agent::control::ControlError::Io(e)) if bounds::is_timeout(&e) => {
            Err(ControlError::Unresponsive {
                request: request_name(message),
                waited: answer,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The error for an answer to `request` that is not the one hoped for: the
/// agent's report of what failed, another kind of message, or none.
fn refusal(answer: Option<AgentMessage>, request: &'static str) -> MonocoreError {
    match answer {
        Some(AgentMessage::Failed(monocore_agent::report::Report::Failed {
            step,
            errno,
            detail,
        })) => MonocoreError::GuestSetup {
            step,
            errno,
            detail,
        },
        Some(other) => ControlError::Unexpected {
            request,
            got: kind_name(&other),
        }
        .into(),
        None => ControlError::Ended.into(),
    }
}

/// Builds `container` in the VM behind `conn` and keeps it, with no
/// process, until [`discard`].
pub(crate) fn prepare(mut conn: UnixStream, container: &GuestContainer) -> MonocoreResult<()> {
    container.validate()?;
    let message = HostMessage::Prepare(Box::new(container.setup.clone()));
    done(&mut conn, &message)
}

/// Forgets the kept container `name` in the VM behind `conn`.
pub(crate) fn discard(mut conn: UnixStream, name: &OsStr) -> MonocoreResult<()> {
    let name = name.as_bytes();
    monocore_agent::control::check_name(name).map_err(|problem| GuestCommandError::Invalid {
        field: GuestCommandField::ContainerName,
        value: monocore_agent::report::escape(name, 64),
        problem,
    })?;
    done(&mut conn, &HostMessage::Discard(name.to_vec()))
}

/// Sends `message`, and reads the agent's answer (within
/// [`bounds::WORK`]): `Done`, or why not.
fn done(conn: &mut UnixStream, message: &HostMessage) -> MonocoreResult<()> {
    match request(conn, message, bounds::WORK)? {
        Some(AgentMessage::Done) => Ok(()),
        other => Err(refusal(other, request_name(message))),
    }
}

/// The name of a host message's kind, for an error that says what was not
/// answered.
pub(crate) fn request_name(message: &HostMessage) -> &'static str {
    match message {
        HostMessage::Hello { .. } => "Hello",
        HostMessage::Exec(_) => "Exec",
        HostMessage::Stdin(_) => "Stdin",
        HostMessage::Signal(_) => "Signal",
        HostMessage::Resize(_) => "Resize",
        HostMessage::Shutdown => "Shutdown",
        HostMessage::Prepare(_) => "Prepare",
        HostMessage::Discard(_) => "Discard",
        HostMessage::Ping(_) => "Ping",
        HostMessage::Kill { .. } => "Kill",
        HostMessage::WriteFile { .. } => "WriteFile",
        HostMessage::Data(_) => "Data",
        HostMessage::ReadFile { .. } => "ReadFile",
        HostMessage::Make { .. } => "Make",
        HostMessage::Stat { .. } => "Stat",
    }
}

/// The name of an agent message's kind, for an error that says what came
/// instead (its contents come from the guest, and are not shown).
pub(crate) fn kind_name(message: &AgentMessage) -> &'static str {
    match message {
        AgentMessage::Hello { .. } => "Hello",
        AgentMessage::Started { .. } => "Started",
        AgentMessage::Stdout(_) => "Stdout",
        AgentMessage::Stderr(_) => "Stderr",
        AgentMessage::Exited(_) => "Exited",
        AgentMessage::Failed(_) => "Failed",
        AgentMessage::Done => "Done",
        AgentMessage::Pong(_) => "Pong",
        AgentMessage::Data(_) => "Data",
        AgentMessage::Entries(_) => "Entries",
    }
}

#[cfg(test)]
mod tests;
