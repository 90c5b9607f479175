//! The `Hello` exchange against a stand-in for libkrun's socket.

use std::os::unix::net::{UnixListener, UnixStream};

use super::greet;

/// A connection whose far end (libkrun, nothing listening in the guest yet)
/// has already been accepted and closed.
fn closed_by_peer() -> UnixStream {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let conn = UnixStream::connect(&socket).unwrap();
    drop(listener.accept().unwrap());
    conn
}

#[test]
fn a_connection_closed_before_our_hello_is_written_means_not_ready() {
    // The write of `Hello` meets a broken pipe: retry, not fail.
    assert!(matches!(
        greet(closed_by_peer(), std::time::Duration::from_secs(5)),
        Ok(None)
    ));
}

#[test]
fn a_connection_closed_after_our_hello_means_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let conn = UnixStream::connect(&socket).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut far, _) = listener.accept().unwrap();
        // Reads the Hello, then closes without answering.
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut far, &mut byte).unwrap();
    });
    assert!(matches!(
        greet(conn, std::time::Duration::from_secs(5)),
        Ok(None)
    ));
    peer.join().unwrap();
}

/// The host's bounds against stand-ins for an agent that stops answering,
/// with short bounds: no VM needed.
mod bounded {
    use std::{
        io::{Read, Write},
        os::unix::net::{UnixListener, UnixStream},
        path::PathBuf,
        sync::mpsc::{self, Receiver, Sender},
        time::{Duration, Instant},
    };

    use monocore_agent::control::{AgentMessage, ExitKind, HostMessage, VERSION};

    use super::super::{GuestCommand, GuestOutput, bounds::Bounds, connect, start};
    use crate::{MonocoreError, error::ControlError};

    fn short() -> Bounds {
        Bounds {
            answer: Duration::from_millis(300),
            work: Duration::from_millis(300),
            ping_after: Duration::from_millis(100),
            pong: Duration::from_millis(300),
            kill_retry: Duration::from_millis(200),
            kill_grace: Duration::from_millis(700),
        }
    }

    /// What a stand-in agent does.
    #[derive(Debug, Clone, Copy)]
    struct Agent {
        /// Answers `Ping`s.
        pong: bool,
        /// Answers `Kill` (with `Exited` in the command's session, `Done`
        /// in one of its own).
        confirm_kill: bool,
        /// Sends this as the command's output once it has started.
        output: &'static [u8],
        /// Reads the command's session (else leaves its input unread).
        read_input: bool,
    }

    const ALIVE: Agent = Agent {
        pong: true,
        confirm_kill: true,
        output: b"before\n",
        read_input: true,
    };

    struct Fake {
        _dir: tempfile::TempDir,
        socket: PathBuf,
        /// Every message it got after `Hello`, with whether it came on a
        /// session of its own.
        heard: Receiver<(HostMessage, bool)>,
    }

    fn fake(agent: Agent) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (tx, heard) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let (conn, tx) = (conn.unwrap(), tx.clone());
                std::thread::spawn(move || serve(conn, agent, &tx));
            }
        });
        Fake {
            _dir: dir,
            socket,
            heard,
        }
    }

    fn serve(mut conn: UnixStream, agent: Agent, heard: &Sender<(HostMessage, bool)>) {
        let Ok(Some(HostMessage::Hello { .. })) = HostMessage::read(&mut conn) else {
            return;
        };
        AgentMessage::Hello { version: VERSION }
            .write(&mut conn)
            .unwrap();
        let Ok(Some(first)) = HostMessage::read(&mut conn) else {
            return;
        };
        let _ = heard.send((first.clone(), !matches!(first, HostMessage::Exec(_))));
        match first {
            HostMessage::Exec(_) => {}
            HostMessage::Ping(nonce) if agent.pong => {
                let _ = AgentMessage::Pong(nonce).write(&mut conn);
                return;
            }
            HostMessage::Kill { .. } if agent.confirm_kill => {
                let _ = AgentMessage::Done.write(&mut conn);
                return;
            }
            // Holds the session, unanswered.
            _ => return drain(conn),
        }
        let _ = AgentMessage::Started { pid: 7 }.write(&mut conn);
        if !agent.output.is_empty() {
            let _ = AgentMessage::Stdout(agent.output.to_vec()).write(&mut conn);
        }
        if !agent.read_input {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        while let Ok(Some(message)) = HostMessage::read(&mut conn) {
            let _ = heard.send((message.clone(), false));
            match message {
                HostMessage::Ping(nonce) if agent.pong => {
                    let _ = AgentMessage::Pong(nonce).write(&mut conn);
                }
                HostMessage::Kill { .. } if agent.confirm_kill => {
                    let _ = AgentMessage::Exited(ExitKind::Signal(9)).write(&mut conn);
                    return;
                }
                _ => {}
            }
        }
    }

    /// Reads until the host ends the connection.
    fn drain(mut conn: UnixStream) {
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    }

    fn command(bounds: Bounds) -> GuestCommand {
        let mut command = GuestCommand::new("/bin/sleep")
            .arg("600")
            .stdout(GuestOutput::Piped)
            .stderr(GuestOutput::Null);
        command.bounds = bounds;
        command
    }

    fn run(fake: &Fake, command: GuestCommand) -> crate::vm::GuestProcess {
        let conn = connect(
            &fake.socket,
            Instant::now() + Duration::from_secs(5),
            &mut || true,
            &mut || true,
            command.bounds.answer,
        )
        .unwrap();
        start(conn, command, &fake.socket).unwrap()
    }

    /// Whether the fake heard a message that `matches`.
    fn heard(fake: &Fake, matches: impl Fn(&HostMessage, bool) -> bool) -> bool {
        fake.heard.try_iter().any(|(m, aside)| matches(&m, aside))
    }

    #[test]
    fn an_agent_that_accepts_and_never_answers_hello_is_unresponsive() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let held = std::thread::spawn(move || {
            // Accepts two connections, reads nothing, answers nothing.
            let conns: Vec<_> = listener.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(3));
            drop(conns);
        });
        let started = Instant::now();
        let booted = connect(
            &socket,
            Instant::now() + Duration::from_secs(60),
            &mut || true,
            &mut || true,
            Duration::from_millis(300),
        );
        let took = started.elapsed();
        assert!(
            matches!(
                booted,
                Err(MonocoreError::Control(ControlError::Unresponsive {
                    request: "Hello",
                    ..
                }))
            ),
            "{booted:?}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        // While the agent has not said it is ready, silence is a boot: the
        // connect goes on until its deadline.
        let started = Instant::now();
        let booting = connect(
            &socket,
            Instant::now() + Duration::from_millis(500),
            &mut || true,
            &mut || false,
            Duration::from_millis(300),
        );
        assert!(
            matches!(
                booting,
                Err(MonocoreError::Control(ControlError::NoAnswer { .. }))
            ),
            "{booting:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(500));
        held.join().unwrap();
    }

    #[test]
    fn a_running_command_whose_agent_goes_silent_is_lost_and_its_stream_ends() {
        let fake = fake(Agent {
            pong: false,
            ..ALIVE
        });
        let mut process = run(&fake, command(short()));
        let mut stdout = process.take_stdout().unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"before\n");
        let lost = process.wait();
        let took = started.elapsed();
        assert!(
            matches!(
                lost,
                Err(MonocoreError::Control(ControlError::Unresponsive {
                    request: "Ping",
                    ..
                }))
            ),
            "{lost:?}"
        );
        // ping_after + pong, give or take a look.
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(heard(&fake, |m, _| matches!(m, HostMessage::Ping(_))));
    }

    #[test]
    fn a_silent_command_whose_agent_answers_pings_runs_on() {
        let fake = fake(ALIVE);
        let mut process = run(&fake, command(short()));
        assert_eq!(
            process.wait_timeout(Duration::from_millis(1500)).unwrap(),
            None
        );
        assert!(heard(&fake, |m, _| matches!(m, HostMessage::Ping(_))));
        process.kill().unwrap();
        assert_eq!(process.wait().unwrap().signal(), Some(9));
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_reported_with_its_output() {
        let fake = fake(ALIVE);
        let timeout = Duration::from_millis(400);
        let started = Instant::now();
        let process = run(&fake, command(short()).timeout(timeout));
        let result = process.wait_with_output();
        let took = started.elapsed();
        match result {
            Err(MonocoreError::CommandTimedOut {
                timeout: t,
                confirmed: true,
                stdout,
                ..
            }) => {
                assert_eq!((t, stdout.as_slice()), (timeout, &b"before\n"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert!(took >= timeout && took < Duration::from_secs(2), "{took:?}");
        assert!(heard(&fake, |m, aside| matches!(
            m,
            HostMessage::Kill { pid: 7 }
        ) && !aside));
    }

    #[test]
    fn a_kill_the_agent_never_confirms_is_given_up_after_its_grace() {
        let fake = fake(Agent {
            confirm_kill: false,
            ..ALIVE
        });
        let bounds = short();
        let started = Instant::now();
        let mut process = run(&fake, command(bounds).timeout(Duration::from_millis(200)));
        let result = process.wait();
        let took = started.elapsed();
        assert!(
            matches!(
                result,
                Err(MonocoreError::CommandTimedOut {
                    confirmed: false,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert!(took >= Duration::from_millis(200) + bounds.kill_grace);
        // On its session, then on one of its own.
        let kills: Vec<bool> = fake
            .heard
            .try_iter()
            .filter(|(m, _)| matches!(m, HostMessage::Kill { pid: 7 }))
            .map(|(_, aside)| aside)
            .collect();
        assert_eq!(kills, [false, true]);
        // Its stream ended too.
        let mut out = Vec::new();
        process
            .take_stdout()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    }

    #[test]
    fn an_abort_ends_a_blocked_read_at_once_and_kills_the_command() {
        let fake = fake(Agent {
            output: b"",
            ..ALIVE
        });
        let mut process = run(&fake, command(short()));
        let mut stdout = process.take_stdout().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = stdout.read(&mut buf).unwrap();
            (n, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(300));
        let signaller = process.signaller();
        let aborted = Instant::now();
        signaller.abort();
        let (n, at) = reader.join().unwrap();
        assert_eq!(n, 0);
        assert!(at.duration_since(aborted) < Duration::from_millis(200));
        assert_eq!(process.wait().unwrap().signal(), Some(9));
        assert!(heard(&fake, |m, _| matches!(
            m,
            HostMessage::Kill { pid: 7 }
        )));
    }

    #[test]
    fn input_the_command_does_not_read_is_judged_on_a_session_of_its_own() {
        // The agent reads nothing more of the command's session: input
        // fills the connection, and the write that blocks holds the
        // session up. The agent is asked on sessions of its own, and
        // answers: no verdict, the writer stays blocked.
        let fake = fake(Agent {
            read_input: false,
            ..ALIVE
        });
        let mut process = run(&fake, command(short()));
        let mut stdin = process.take_stdin().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![0u8; 64 << 10];
            loop {
                if let Err(e) = stdin.write_all(&chunk) {
                    return e;
                }
            }
        });
        assert_eq!(
            process.wait_timeout(Duration::from_millis(1500)).unwrap(),
            None
        );
        assert!(heard(&fake, |m, aside| matches!(m, HostMessage::Ping(_)) && aside));
        // A kill goes past the held-up session too.
        process.kill().unwrap();
        assert!(heard(&fake, |m, aside| matches!(
            m,
            HostMessage::Kill { pid: 7 }
        ) && aside));
        drop(process);
        // Dropping the handle ends the connection: the writer fails.
        let _ = writer.join().unwrap();
    }
}
