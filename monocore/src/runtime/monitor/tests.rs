use std::{io::Read, sync::Mutex};

use super::*;

#[test]
fn captured_console_is_bounded() {
    let shared = Mutex::new(Shared::default());
    read_console(
        std::io::repeat(b'x').take((MAX_CONSOLE + 12345) as u64),
        &shared,
    );
    let state = lock(&shared);
    assert_eq!(state.console.len(), MAX_CONSOLE);
    assert!(state.console_truncated);
}

#[test]
fn log_lines_and_the_log_tail_are_bounded() {
    let shared = Mutex::new(Shared::default());
    // One 1 MiB line without a newline, then many short lines.
    let mut input = vec![b'['; 1 << 20];
    for i in 0..1000 {
        input.extend_from_slice(format!("\nline {i}").as_bytes());
    }
    read_log(&input[..], &shared, LogLevel::Off);
    let state = lock(&shared);
    assert_eq!(state.tail.len(), LOG_TAIL);
    assert!(state.tail.iter().all(|l| l.len() <= 64 << 10));
    assert_eq!(state.tail.back().map(String::as_str), Some("line 999"));

    let shared = Mutex::new(Shared::default());
    read_log(&vec![b'a'; 1 << 20][..], &shared, LogLevel::Off);
    let state = lock(&shared);
    assert!(state.tail.iter().all(|l| l.len() <= 64 << 10));
    assert_eq!(state.tail.len(), (1 << 20) / (64 << 10));
}
