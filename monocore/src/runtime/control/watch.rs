//! The thread that holds one running command to its bounds (see
//! [`super::bounds`]): its timeout, an abort, and an agent that stops
//! answering. It ends as soon as the command's outcome is settled or its
//! handle is dropped; whatever it decides, it decides within the bounds,
//! whatever the guest does.

use std::time::{Duration, Instant};

use monocore_agent::control::HostMessage;

use super::{channel::Channel, process::Shared};
use crate::error::ControlError;

/// The longest the watch sleeps without looking again (a write that holds
/// the connection up does not wake it).
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Where a kill stands.
#[derive(Debug, Clone, Copy)]
struct Killing {
    since: Instant,
    /// Sent again on a session of its own.
    retried: bool,
}

/// Watches the command of `channel` until its outcome is settled.
pub(super) fn watch(channel: &Channel, shared: &Shared, timeout: Option<Duration>) {
    let bounds = channel.bounds;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut killing: Option<Killing> = None;
    // When the outstanding Ping was sent.
    let mut ping: Option<Instant> = None;
    let mut nonce: u32 = 0;
    let mut state = shared.lock();
    let verdict = loop {
        if state.settled() || state.dropped {
            break false;
        }
        let now = Instant::now();
        match killing {
            None => {
                if deadline.is_some_and(|d| now >= d) {
                    state.timed_out = true;
                }
                if state.timed_out || state.aborted {
                    drop(state);
                    let _ = channel.kill(bounds.kill_grace);
                    killing = Some(Killing {
                        since: now,
                        retried: false,
                    });
                    state = shared.lock();
                    continue;
                }
            }
            Some(kill) if now >= kill.since + bounds.kill_grace => {
                state.gave_up = true;
                if !state.timed_out {
                    state.lost.get_or_insert(ControlError::Unresponsive {
                        request: "Kill",
                        waited: bounds.kill_grace,
                    });
                }
                break true;
            }
            Some(kill) if !kill.retried && now >= kill.since + bounds.kill_retry => {
                // Its session may be held up: again, on one of its own.
                killing = Some(Killing {
                    retried: true,
                    ..kill
                });
                drop(state);
                let left = (kill.since + bounds.kill_grace).saturating_duration_since(now);
                let _ = channel.kill_aside(left.max(Duration::from_millis(1)));
                state = shared.lock();
                continue;
            }
            Some(_) => {}
        }
        // Whether the agent answers. While a kill is under way its grace
        // bounds the wait instead.
        if killing.is_none() {
            if state.delivering {
                // Held up on this side: its silence proves nothing.
                ping = None;
            } else if channel.writing_for().is_some_and(|w| w >= bounds.pong) {
                // A write held up (input the command does not read):
                // ask on a session of its own.
                drop(state);
                let answered = channel.ping_aside();
                state = shared.lock();
                match answered {
                    Ok(()) => state.heard = Instant::now(),
                    Err(_) => {
                        state.lost.get_or_insert(ControlError::Unresponsive {
                            request: "Ping",
                            waited: bounds.answer,
                        });
                        break true;
                    }
                }
                continue;
            } else {
                match ping {
                    Some(sent) if state.heard >= sent => ping = None,
                    Some(sent) if now >= sent + bounds.pong => {
                        state.lost.get_or_insert(ControlError::Unresponsive {
                            request: "Ping",
                            waited: bounds.pong,
                        });
                        break true;
                    }
                    Some(_) => {}
                    None if now >= state.heard + bounds.ping_after => {
                        drop(state);
                        nonce = nonce.wrapping_add(1);
                        // A write under way is a write the agent will
                        // answer or not: look again soon.
                        // Taken before the write: a Pong may be read (and
                        // `heard` set) before the write returns.
                        let at = Instant::now();
                        if channel.try_send(&HostMessage::Ping(nonce)).is_some() {
                            ping = Some(at);
                        }
                        state = shared.lock();
                        continue;
                    }
                    None => {}
                }
            }
        }
        let next = [
            deadline.filter(|_| killing.is_none()),
            killing
                .map(|k| k.since + bounds.kill_retry)
                .filter(|_| !killing.is_some_and(|k| k.retried)),
            killing.map(|k| k.since + bounds.kill_grace),
            ping.map(|p| p + bounds.pong),
            Some(state.heard + bounds.ping_after).filter(|_| ping.is_none()),
        ]
        .into_iter()
        .flatten()
        .min()
        .map_or(LOOK_EVERY, |at| at.saturating_duration_since(now))
        .clamp(Duration::from_millis(1), LOOK_EVERY);
        state = shared
            .changed
            .wait_timeout(state, next)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    };
    drop(state);
    if verdict {
        // The command is lost: its streams end, a blocked write fails, and
        // the agent (if it ever reads again) kills it.
        channel.close();
        shared.wake.fire();
    }
    shared.changed.notify_all();
}
