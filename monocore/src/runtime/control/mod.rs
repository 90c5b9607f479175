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
//! nothing the guest sends names a host path or a host command.
//!
//! [`VmHandle::exec`]: crate::vm::VmHandle::exec

mod command;
mod container;
mod files;
mod process;

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
/// each connection at once, so this retries until `deadline`, or until
/// `alive` says the VM has ended.
pub(crate) fn connect(
    socket: &Path,
    deadline: Instant,
    alive: &mut dyn FnMut() -> bool,
) -> MonocoreResult<UnixStream> {
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(conn) = hello(socket)? {
            return Ok(conn);
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
fn hello(socket: &Path) -> Result<Option<UnixStream>, ControlError> {
    match UnixStream::connect(socket) {
        Ok(conn) => greet(conn),
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
/// read.
fn greet(mut conn: UnixStream) -> Result<Option<UnixStream>, ControlError> {
    use monocore_agent::control::ControlError as Wire;
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

/// Starts `command` on the agent behind `conn`.
pub(crate) fn start(mut conn: UnixStream, command: GuestCommand) -> MonocoreResult<GuestProcess> {
    command.validate()?;
    HostMessage::Exec(Box::new(command.request.clone()))
        .write(&mut conn)
        .map_err(ControlError::from)?;
    match AgentMessage::read(&mut conn).map_err(ControlError::from)? {
        Some(AgentMessage::Started { pid }) => GuestProcess::start(conn, pid, &command),
        other => Err(refusal(other, "Exec")),
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
    HostMessage::Prepare(Box::new(container.setup.clone()))
        .write(&mut conn)
        .map_err(ControlError::from)?;
    done(conn, "Prepare")
}

/// Forgets the kept container `name` in the VM behind `conn`.
pub(crate) fn discard(mut conn: UnixStream, name: &OsStr) -> MonocoreResult<()> {
    let name = name.as_bytes();
    monocore_agent::control::check_name(name).map_err(|problem| GuestCommandError::Invalid {
        field: GuestCommandField::ContainerName,
        value: monocore_agent::report::escape(name, 64),
        problem,
    })?;
    HostMessage::Discard(name.to_vec())
        .write(&mut conn)
        .map_err(ControlError::from)?;
    done(conn, "Discard")
}

/// The agent's answer to `request`: `Done`, or why not.
fn done(mut conn: UnixStream, request: &'static str) -> MonocoreResult<()> {
    match AgentMessage::read(&mut conn).map_err(ControlError::from)? {
        Some(AgentMessage::Done) => Ok(()),
        other => Err(refusal(other, request)),
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
        AgentMessage::Data(_) => "Data",
        AgentMessage::Entries(_) => "Entries",
    }
}

#[cfg(test)]
mod tests;
