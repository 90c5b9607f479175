//! Serving the control channel: one thread per connection, one command (or
//! one run of file requests, see [`files`]) per session (see
//! [`monocore_agent::control`]).

use std::{
    fs::File,
    io::{BufReader, Read, Write},
    os::fd::{AsFd, OwnedFd},
    process::ExitStatus,
    sync::{
        Arc, Mutex, PoisonError,
        mpsc::{self, Sender},
    },
    time::Duration,
};

use super::{
    command::{Program, merged_limits},
    container::{Containers, Created},
    files, pty,
    setup::{Failure, workdir_error},
    spawn::{Spawned, spawn},
    sys, tree,
};
use monocore_agent::{
    control::{
        AgentMessage, ControlError, ExecError, ExecField, ExecRequest, ExitKind, HostMessage,
        MAX_DATA, Place, VERSION,
    },
    report::{Report, Step, escape},
    spec::Rlimit,
};

/// How long output may still arrive after a command has exited (from its
/// own children that keep its stdout open) before `Exited` is sent.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// What the agent's main loop hears from sessions and the main command.
pub(crate) enum Event {
    /// The main command ended.
    MainExited(ExitKind),
    /// A host asked to end the VM.
    Shutdown,
}

/// State shared by every session.
pub(crate) struct Agent {
    /// The VM's resource limits, for every command.
    pub(crate) rlimits: Vec<Rlimit>,
    /// Pids of the commands sessions run, for the shutdown.
    pub(crate) running: Mutex<Vec<u32>>,
    /// The containers commands run in, by name.
    pub(crate) containers: Containers,
    pub(crate) events: Sender<Event>,
}

impl Agent {
    /// Kills every command a session runs, with what it started.
    pub(crate) fn kill_all(&self) {
        let pids = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for pid in pids {
            tree::kill_tree(pid);
        }
    }

    /// Kills the command `pid` with what it started (the host's `Kill`),
    /// if it is one a session runs; a pid that is not is left alone.
    fn kill(&self, pid: u32) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&pid);
        if running {
            tree::kill_tree(pid);
        }
    }

    fn forget(&self, pid: u32) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&p| p != pid);
    }
}

/// How a status ended, for `Exited`.
pub(crate) fn exit_kind(status: ExitStatus) -> ExitKind {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitKind::Code(code),
        (None, Some(signal)) => ExitKind::Signal(signal),
        (None, None) => ExitKind::Code(255),
    }
}

/// Accepts connections on `listener` forever, a thread each.
pub(crate) fn serve(listener: OwnedFd, agent: Arc<Agent>) {
    while let Ok(conn) = sys::accept(listener.as_fd()) {
        let agent = Arc::clone(&agent);
        let _ = std::thread::Builder::new()
            .name("session".into())
            .spawn(move || session(File::from(conn), &agent));
    }
}

/// The sending half of a connection; once closed (after `Exited`), nothing
/// more is sent.
pub(super) struct Outbox {
    conn: File,
    closed: bool,
}

pub(super) type SharedOutbox = Arc<Mutex<Outbox>>;

/// The sending half of the connection `conn`.
pub(super) fn outbox(conn: File) -> SharedOutbox {
    Arc::new(Mutex::new(Outbox {
        conn,
        closed: false,
    }))
}

pub(super) fn send(outbox: &SharedOutbox, message: &AgentMessage) -> bool {
    let mut out = outbox.lock().unwrap_or_else(PoisonError::into_inner);
    !out.closed && message.write(&mut out.conn).is_ok()
}

fn session(conn: File, agent: &Agent) {
    // Buffered: a frame arrives in one read, not one per field (each
    // read is a trip through the guest kernel, slow under emulation).
    let Ok(mut input) = conn
        .try_clone()
        .map(|c| BufReader::with_capacity(MAX_DATA + 16, c))
    else {
        return;
    };
    let outbox = outbox(conn);
    match HostMessage::read(&mut input) {
        Ok(Some(HostMessage::Hello { version: VERSION })) => {}
        _ => return,
    }
    if !send(&outbox, &AgentMessage::Hello { version: VERSION }) {
        return;
    }
    match HostMessage::read(&mut input) {
        Ok(Some(HostMessage::Exec(request))) => exec(&request, input, &outbox, agent),
        Ok(Some(HostMessage::Prepare(setup))) => {
            let prepared = setup
                .check()
                .map_err(check_failure)
                .and_then(|()| agent.containers.prepare(&setup));
            answer(&outbox, prepared);
        }
        Ok(Some(HostMessage::Discard(name))) => answer(&outbox, agent.containers.discard(&name)),
        Ok(Some(HostMessage::Shutdown)) => {
            let _ = agent.events.send(Event::Shutdown);
        }
        // A session of its own: the host asks while the command's session
        // is held up (see the protocol's bounds).
        Ok(Some(HostMessage::Ping(nonce))) => {
            send(&outbox, &AgentMessage::Pong(nonce));
        }
        Ok(Some(HostMessage::Kill { pid })) => {
            agent.kill(pid);
            send(&outbox, &AgentMessage::Done);
        }
        Ok(Some(request)) if files::is_request(&request) => {
            files::serve(request, &mut input, &outbox, agent);
        }
        _ => {}
    }
}

/// `Done`, or what failed.
fn answer(outbox: &SharedOutbox, result: Result<(), Failure>) {
    match result {
        Ok(()) => {
            send(outbox, &AgentMessage::Done);
        }
        Err(f) => failed(outbox, f.step, f.errno, f.detail.as_bytes()),
    }
}

pub(super) fn failed(outbox: &SharedOutbox, step: Step, errno: i32, detail: &[u8]) {
    let report = Report::Failed {
        step,
        errno,
        detail: escape(detail, 256),
    };
    send(outbox, &AgentMessage::Failed(report));
}

/// What the host sends, buffered.
pub(super) type Incoming = BufReader<File>;

/// Where the host's input goes.
enum Input {
    Pipe(Option<File>),
    Terminal(File),
}

fn exec(request: &ExecRequest, mut input: Incoming, outbox: &SharedOutbox, agent: &Agent) {
    // The place first: a container's command is forked from inside it.
    let created = match enter_place(request, agent) {
        Ok(created) => created,
        Err(f) => return failed(outbox, f.step, f.errno, f.detail.as_bytes()),
    };
    let limits = merged_limits(&agent.rlimits, &request.rlimits);
    let program = Program {
        exec: &request.exec,
        args: &request.args,
        env: &request.env,
        workdir: &request.workdir,
        rlimits: &limits,
        user: request.user.as_ref(),
    };
    if let Err((errno, detail)) = workdir_error(program.workdir()) {
        return failed(outbox, Step::Workdir, errno, &detail);
    }
    let started = match request.tty {
        Some(size) => spawn_with_terminal(&program, size),
        None => spawn_with_pipes(&program),
    };
    let (child, sources, mut target) = match started {
        Ok(started) => started,
        Err((step, e)) => {
            let errno = e.raw_os_error().unwrap_or(5);
            return failed(outbox, step, errno, program.exec());
        }
    };
    let pid = child.id();
    agent
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pid);
    send(outbox, &AgentMessage::Started { pid });
    let waiter = watch(child, sources, created, outbox);
    let exited = relay_input(&mut input, &mut target, pid, outbox, agent);
    if !exited && !outbox.lock().unwrap_or_else(PoisonError::into_inner).closed {
        // The host went away while the command runs: nothing leaks.
        tree::kill_tree(pid);
    }
    if let Ok(waiter) = waiter {
        let _ = waiter.join();
    }
    agent.forget(pid);
}

/// A value the host should not have sent, as the step it concerns.
fn check_failure(e: ExecError) -> Failure {
    let step = match e.field {
        ExecField::BindSource(index) | ExecField::BindTarget(index) => Step::Bind {
            index: u32::try_from(index).unwrap_or(u32::MAX),
        },
        _ => Step::Container,
    };
    Failure {
        step,
        errno: 22, // EINVAL
        detail: e.to_string(),
    }
}

/// Checks the request's values, then moves the calling thread where the
/// command runs: nowhere for the VM, into a new container (returned: it
/// lives until the command ends) or into a running one.
fn enter_place(request: &ExecRequest, agent: &Agent) -> Result<Option<Created>, Failure> {
    request.check().map_err(check_failure)?;
    match &request.place {
        Place::Vm => Ok(None),
        Place::Create(setup) => agent.containers.create(setup).map(Some),
        Place::Join(name) => agent.containers.join(name).map(|()| None),
    }
}

/// Streams the command's output (a thread per source) and waits for it (a
/// thread that sends `Exited` once the output has drained, within
/// [`OUTPUT_GRACE`]). A container the command created is forgotten as soon
/// as it has ended, before `Exited` is sent.
fn watch(
    mut child: Spawned,
    sources: Vec<(File, bool)>,
    created: Option<Created>,
    outbox: &SharedOutbox,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (done_tx, done_rx) = mpsc::channel();
    let pumps = sources.len();
    for (source, stderr) in sources {
        let outbox = Arc::clone(outbox);
        let done = done_tx.clone();
        let _ = std::thread::Builder::new()
            .name("pump".into())
            .spawn(move || {
                pump(source, stderr, &outbox);
                let _ = done.send(());
            });
    }
    let outbox = Arc::clone(outbox);
    std::thread::Builder::new()
        .name("wait".into())
        .spawn(move || {
            let kind = child.wait().map_or(ExitKind::Code(255), exit_kind);
            drop(created);
            // Let the output drain first, within reason.
            for _ in 0..pumps {
                if done_rx.recv_timeout(OUTPUT_GRACE).is_err() {
                    break;
                }
            }
            send(&outbox, &AgentMessage::Exited(kind));
            let mut out = outbox.lock().unwrap_or_else(PoisonError::into_inner);
            out.closed = true;
            // The host reads Exited, then the end of the connection.
            let _ = sys::shutdown_write(out.conn.as_fd());
        })
}

/// Relays the host's messages for the command `pid` (input, signals,
/// resizes, pings, kills, a shutdown) until the command has exited
/// (`true`) or the host has gone (`false`).
fn relay_input(
    input: &mut Incoming,
    target: &mut Input,
    pid: u32,
    outbox: &SharedOutbox,
    agent: &Agent,
) -> bool {
    loop {
        match HostMessage::read(input) {
            Ok(Some(HostMessage::Stdin(data))) => write_input(target, &data),
            Ok(Some(HostMessage::Signal(signal))) => {
                let _ = sys::send_signal(pid, signal);
            }
            Ok(Some(HostMessage::Resize(size))) => {
                if let Input::Terminal(master) = &target {
                    let _ = sys::set_winsize(master.as_fd(), size);
                }
            }
            Ok(Some(HostMessage::Shutdown)) => {
                let _ = agent.events.send(Event::Shutdown);
            }
            Ok(Some(HostMessage::Ping(nonce))) => {
                send(outbox, &AgentMessage::Pong(nonce));
            }
            Ok(Some(HostMessage::Kill { pid })) => agent.kill(pid),
            Ok(Some(_)) => {}
            Ok(None) | Err(ControlError::Truncated | ControlError::Io(_)) => break,
            Err(_) => break,
        }
        if outbox.lock().unwrap_or_else(PoisonError::into_inner).closed {
            return true;
        }
    }
    false
}

fn write_input(target: &mut Input, data: &[u8]) {
    match target {
        // Empty input is the end of input: close the pipe.
        Input::Pipe(stdin) if data.is_empty() => *stdin = None,
        Input::Pipe(Some(stdin)) => {
            let _ = stdin.write_all(data);
        }
        Input::Pipe(None) => {}
        // A terminal has no end of input of its own (^D is the user's).
        Input::Terminal(_) if data.is_empty() => {}
        Input::Terminal(master) => {
            let _ = master.write_all(data);
        }
    }
}

/// Sends everything read from `source` as output frames until its end.
fn pump(mut source: File, stderr: bool, outbox: &SharedOutbox) {
    let mut buf = vec![0u8; MAX_DATA];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A terminal master reads EIO once the last slave fd is closed.
            Err(_) => return,
        };
        let data = buf.get(..n).unwrap_or(&[]).to_vec();
        let message = if stderr {
            AgentMessage::Stderr(data)
        } else {
            AgentMessage::Stdout(data)
        };
        if !send(outbox, &message) {
            return;
        }
    }
}

type Started = (Spawned, Vec<(File, bool)>, Input);

/// A pipe: (read end, write end).
fn pipe() -> std::io::Result<(File, File)> {
    let (read, write) = std::io::pipe()?;
    Ok((
        File::from(OwnedFd::from(read)),
        File::from(OwnedFd::from(write)),
    ))
}

fn spawn_with_pipes(program: &Program<'_>) -> Result<Started, (Step, std::io::Error)> {
    let system = |e| (Step::System, e);
    let (stdin, input) = pipe().map_err(system)?;
    let (output, stdout) = pipe().map_err(system)?;
    let (errors, stderr) = pipe().map_err(system)?;
    let child = spawn(
        program,
        [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
        false,
    )
    .map_err(|e| (Step::Exec, e))?;
    // The child's ends are the child's alone: its output ends when it (and
    // what it started) closes them.
    drop((stdin, stdout, stderr));
    let sources = vec![(output, false), (errors, true)];
    Ok((child, sources, Input::Pipe(Some(input))))
}

fn spawn_with_terminal(
    program: &Program<'_>,
    size: monocore_agent::control::WinSize,
) -> Result<Started, (Step, std::io::Error)> {
    let system = |e| (Step::System, e);
    let pty = pty::open(size).map_err(system)?;
    let slave = pty.slave.as_fd();
    let child = spawn(program, [slave, slave, slave], true).map_err(|e| (Step::Exec, e))?;
    drop(pty.slave);
    let output = pty.master.try_clone().map_err(system)?;
    Ok((child, vec![(output, false)], Input::Terminal(pty.master)))
}

#[cfg(test)]
mod tests {
    use monocore_agent::control::{Bind, ContainerSetup};

    use super::*;

    fn agent() -> Agent {
        Agent {
            rlimits: Vec::new(),
            running: Mutex::new(Vec::new()),
            containers: Containers::default(),
            events: mpsc::channel().0,
        }
    }

    #[test]
    fn a_request_the_agent_refuses_is_a_failure_at_its_step() {
        let bad_bind = ExecRequest {
            place: Place::Create(ContainerSetup {
                name: b"web".to_vec(),
                root: b"/pod/web".to_vec(),
                binds: vec![
                    Bind {
                        source: b"/a".to_vec(),
                        target: b"/a".to_vec(),
                        readonly: false,
                    },
                    Bind {
                        source: b"/b".to_vec(),
                        target: b"/b/../../etc".to_vec(),
                        readonly: true,
                    },
                ],
                ..ContainerSetup::default()
            }),
            ..ExecRequest::default()
        };
        let Err(failure) = enter_place(&bad_bind, &agent()) else {
            panic!("accepted")
        };
        assert_eq!((failure.step, failure.errno), (Step::Bind { index: 1 }, 22));
        assert_eq!(
            failure.detail,
            "container.binds[1].target has a `..` component"
        );

        let unknown = ExecRequest {
            place: Place::Join(b"nobody".to_vec()),
            ..ExecRequest::default()
        };
        let Err(failure) = enter_place(&unknown, &agent()) else {
            panic!("joined")
        };
        assert_eq!((failure.step, failure.errno), (Step::Container, 2));
        assert!(matches!(
            enter_place(&ExecRequest::default(), &agent()),
            Ok(None)
        ));
    }
}
