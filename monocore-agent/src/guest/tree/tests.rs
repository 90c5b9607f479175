//! Finding a command's processes, and killing them all: on this host, with
//! commands started as the agent starts them.

use std::{os::fd::AsFd, time::Instant};

use super::*;
use crate::guest::{command::Program, spawn::spawn};

fn stat(pid: u32, ppid: u32, pgrp: u32, session: u32) -> Stat {
    Stat {
        pid,
        state: b'S',
        ppid,
        pgrp,
        session,
    }
}

#[test]
fn a_stat_line_parses_even_with_spaces_and_parens_in_the_name() {
    let line = b"4242 (a (b) c) S 17 4242 4240 0 -1 4194560 107 0 0 0\n";
    assert_eq!(parse_stat(line), Some(stat(4242, 17, 4242, 4240)));
    let zombie = b"7 (sleep) Z 1 5 5 0";
    assert_eq!(parse_stat(zombie).map(|s| s.state), Some(b'Z'));
    assert_eq!(parse_stat(b"7 (sleep) S 1 5"), None);
    assert_eq!(parse_stat(b"x (sleep) S 1 5 5"), None);
    assert_eq!(parse_stat(b""), None);
}

#[test]
fn a_command_s_members_are_its_group_session_and_descendants() {
    let all = [
        stat(1, 0, 1, 1),
        stat(10, 1, 10, 10),  // the command
        stat(11, 10, 10, 10), // its child
        stat(12, 11, 12, 12), // a grandchild that left group and session
        stat(13, 1, 10, 10),  // an orphan still in its group
        stat(14, 1, 14, 10),  // an orphan in another group of its session
        stat(15, 13, 15, 15), // a child of that orphan, on its own
        stat(20, 1, 20, 20),  // another command
        stat(21, 20, 20, 20),
    ];
    let found: Vec<u32> = members(10, &all).into_iter().collect();
    assert_eq!(found, [10, 11, 12, 13, 14, 15]);
    // PID 1 is never one, even when asked for.
    assert!(!members(1, &all).contains(&1));
}

fn alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|s| s.state != b'Z' && s.state != b'X')
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_with_what_it_started() {
    // A shell that ignores SIGTERM, with a background child, one that left
    // for a session of its own, and a foreground one.
    let script = [
        b"-c".to_vec(),
        b"trap '' TERM; sleep 300 & setsid sleep 301 & sleep 302".to_vec(),
    ];
    let program = Program {
        exec: b"sh",
        args: &script,
        env: &[],
        workdir: b"/",
        rlimits: &[],
        user: None,
    };
    let (stdin, _input) = std::io::pipe().unwrap();
    let (_output, out) = std::io::pipe().unwrap();
    let mut child = spawn(&program, [stdin.as_fd(), out.as_fd(), out.as_fd()], false).unwrap();
    drop((stdin, out));
    let leader = child.id();
    // It leads a group of its own.
    let own = parse_stat(&std::fs::read(format!("/proc/{leader}/stat")).unwrap()).unwrap();
    assert_eq!(own.pgrp, leader);
    let started = Instant::now();
    let found = loop {
        let found = members(leader, &processes());
        if found.len() >= 4 {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sleeps never started: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let killed = kill_tree(leader);
    assert!(killed.is_superset(&found), "{killed:?} ⊉ {found:?}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let started = Instant::now();
    while found.iter().any(|&pid| alive(pid)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still alive: {:?}",
            found.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_agent_itself_and_pid_1_are_never_signalled() {
    assert!(kill_tree(0).is_empty());
    assert!(kill_tree(1).is_empty());
    assert!(sys::send_signal_raw(-1, 0).is_err());
    assert!(sys::send_signal_raw(0, 0).is_err());
    assert!(sys::send_signal_raw(1, 0).is_err());
}
