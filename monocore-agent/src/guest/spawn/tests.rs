//! Commands started by [`spawn`]: exactly their arguments, environment,
//! limits, directory and user; a terminal; a failing step as its errno.

use std::io::Read;

use monocore_agent::{control::User, spec::Rlimit};

use super::*;

fn program<'a>(script: &'a [Vec<u8>], env: &'a [Vec<u8>]) -> Program<'a> {
    Program {
        exec: b"sh",
        args: script,
        env,
        workdir: b"/tmp",
        rlimits: &[],
        user: None,
    }
}

/// Runs `program` with its stdout and stderr on one pipe: its status
/// and output.
fn run(program: &Program<'_>) -> (std::process::ExitStatus, String) {
    let (stdin_read, stdin_write) = std::io::pipe().unwrap();
    let (mut out_read, out_write) = std::io::pipe().unwrap();
    let mut child = spawn(
        program,
        [stdin_read.as_fd(), out_write.as_fd(), out_write.as_fd()],
        false,
    )
    .unwrap();
    drop((stdin_read, stdin_write, out_write));
    let mut text = String::new();
    out_read.read_to_string(&mut text).unwrap();
    (child.wait().unwrap(), text)
}

#[test]
fn a_command_gets_exactly_its_arguments_environment_limits_and_directory() {
    let script = [
        b"-c".to_vec(),
        b"printf '%s|' \"$0\" \"$ONLY\" \"$TWICE\" \"$(pwd)\" \"$(ulimit -n)\"; env | grep -c =; exit 3"
            .to_vec(),
    ];
    let env = [
        b"ONLY=this".to_vec(),
        b"=no-name".to_vec(),
        b"TWICE=first".to_vec(),
        b"TWICE=last".to_vec(),
    ];
    let limits = [Rlimit {
        resource: 7,
        soft: 77,
        hard: 88,
    }];
    let mut program = program(&script, &env);
    program.rlimits = &limits;
    let (status, text) = run(&program);
    assert_eq!(status.code(), Some(3), "{text}");
    // argv[0] as given; `sh` adds PWD (and may add others) on its own.
    assert!(text.starts_with("sh|this|last|/tmp|77|"), "{text}");
}

#[test]
fn a_step_that_fails_is_its_errno() {
    let script = [b"-c".to_vec(), b"true".to_vec()];
    let mut missing = program(&script, &[]);
    missing.exec = b"/no/such/program";
    let (stdin, _) = std::io::pipe().unwrap();
    let fd = stdin.as_fd();
    let err = spawn(&missing, [fd, fd, fd], false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(2));
    let mut bad_dir = program(&script, &[]);
    bad_dir.workdir = b"/no/such/dir";
    let err = spawn(&bad_dir, [fd, fd, fd], false).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(2));
}

#[test]
fn a_command_with_a_terminal_leads_its_session() {
    let script = [b"-c".to_vec(), b"tty; ps -o sid= -p $$; echo $$".to_vec()];
    let pty =
        super::super::pty::open(monocore_agent::control::WinSize { rows: 24, cols: 80 }).unwrap();
    let slave = pty.slave.as_fd();
    let mut child = spawn(&program(&script, &[]), [slave, slave, slave], true).unwrap();
    drop(pty.slave);
    let mut master = pty.master;
    let mut bytes = Vec::new();
    // A master reads EIO once the last slave is closed.
    let _ = master.read_to_end(&mut bytes);
    assert!(child.wait().unwrap().success());
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{text}"
    );
    // Its session id is its own pid.
    assert_eq!(lines.get(1), lines.get(2), "{text}");
}

#[test]
fn a_command_runs_as_its_user_with_exactly_its_groups() {
    // Only root can change its user.
    if std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| !s.lines().any(|l| l.starts_with("Uid:\t0\t")))
    {
        eprintln!("SKIPPED: a_command_runs_as_its_user_…: needs root");
        return;
    }
    let user = User {
        uid: 4321,
        gid: 8765,
        groups: vec![11, 12],
    };
    let script = [b"-c".to_vec(), b"id -u; id -g; id -G".to_vec()];
    let mut program = program(&script, &[]);
    program.workdir = b"/";
    program.user = Some(&user);
    let (status, text) = run(&program);
    assert!(status.success(), "{text}");
    assert_eq!(text, "4321\n8765\n8765 11 12\n");
}

#[test]
fn a_command_without_a_terminal_leads_a_process_group_of_its_own() {
    let script = [b"-c".to_vec(), b"ps -o pgid= -p $$; echo $$".to_vec()];
    let (_, text) = run(&program(&script, &[]));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines.first(), lines.get(1), "{text}");
}
