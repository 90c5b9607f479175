//! A progress line for a step that may take a while: drawn on stderr only
//! when it is a terminal (and not `--quiet`), only once the step has taken
//! [`SHOW_AFTER`], and cleared when the step ends. Nothing at all is written
//! when stderr is not a terminal.

use std::{
    io::IsTerminal,
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::output::err;

/// A step shorter than this shows no line (no flicker for quick steps).
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// How often the line is redrawn.
const REDRAW: Duration = Duration::from_millis(100);

/// The progress line of one step; see the module docs.
pub(crate) struct Line {
    running: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Line {
    /// Starts the line for `what` ("preparing the busybox rootfs").
    pub(crate) fn start(what: &'static str) -> Self {
        if !crate::output::chatty() || !std::io::stderr().is_terminal() {
            return Self { running: None };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("monocore-progress".into())
            .spawn(move || {
                let mut drawn = false;
                let mut wait = SHOW_AFTER;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                    let secs = started.elapsed().as_secs_f64();
                    err!("\r\x1b[Kmonocore: {what}… {secs:.1} s");
                    drawn = true;
                    wait = REDRAW;
                }
                if drawn {
                    err!("\r\x1b[K");
                }
            });
        Self {
            running: thread.ok().map(|t| (tx, t)),
        }
    }

    /// Ends the step: the line is cleared.
    pub(crate) fn done(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some((tx, thread)) = self.running.take() {
            let _ = tx.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop();
    }
}
