//! A user's program that does what programs do before they spawn a VM: it
//! starts threads, installs signal handlers, blocks a signal and sets a
//! `log` logger; then it spawns a VM and says whether it reached the VMM.
//!
//! Usage: `spawner <ran-file> <boot|vmm> [wait]`
//!
//! - `<ran-file>`: `main` appends a line to it when it starts, so a test can
//!   tell how often the program ran (once: never in the VM helper).
//! - `boot`: a real boot (`echo` in a busybox VM); `vmm`: a kernel that is
//!   not one, refused by libkrun's `krun_start_enter` at once.
//! - `wait`: read a line from stdin first (a test replaces the executable
//!   on disk meanwhile).
//!
//! Prints `reached the VMM: …` and exits 0, or `did not reach the VMM: …`
//! and exits 1.

use std::{
    io::{BufRead, Write},
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use monocore_downstream::{chain, echo, reached_the_vmm, spawn_to_start_enter};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!("spawner log: {} {}", record.target(), record.args());
    }
    fn flush(&self) {}
}

fn install_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP] {
        // SAFETY: a zeroed `sigaction` is a valid value; the handler only
        // touches an atomic (async-signal-safe).
        let status = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        assert_eq!(status, 0, "sigaction({signal})");
    }
    // SAFETY: a valid, initialised signal set, read during the call only.
    let status = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    assert_eq!(status, 0, "pthread_sigmask");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(ran), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: spawner <ran-file> <boot|vmm> [wait]");
        return ExitCode::from(2);
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ran)
        .expect("open the ran-file");
    writeln!(file, "main").expect("write the ran-file");
    drop(file);

    log::set_logger(&Logger).expect("the first logger");
    log::set_max_level(log::LevelFilter::Trace);
    install_handlers();
    let stop = Arc::new(AtomicBool::new(false));
    let lock = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, lock) = (Arc::clone(&stop), Arc::clone(&lock));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // Held across the other threads' fork and exec.
                    let mut n = lock.lock().expect("not poisoned");
                    *n += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    log::info!("spawner: threads, handlers and logger are set");

    if args.get(3).is_some_and(|a| a == "wait") {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .expect("read stdin");
    }
    let run = match mode.as_str() {
        "boot" => echo("hello from a program with threads"),
        _ => spawn_to_start_enter(),
    };
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("worker");
    }
    match run {
        Ok((outcome, console)) if reached_the_vmm(&outcome) => {
            let outcome = outcome.map_err(|e| chain(&e));
            println!("reached the VMM: {outcome:?}; console: {console:?}");
            ExitCode::SUCCESS
        }
        Ok((outcome, _)) => {
            let outcome = outcome.map_err(|e| chain(&e));
            println!("did not reach the VMM: {outcome:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("did not reach the VMM: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}
