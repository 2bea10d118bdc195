//! The tails phase's daemon: it spins on the clock for its role's time (20
//! µs, 200 µs on the slow node) instead of sleeping, since a sleep lasts
//! 60 µs or more whatever it asks for; the flaky one fails every other
//! event at once. A replica learns its role and its seat (where it counts
//! what it processed) from the first event delivered to it, which it
//! processes as it will process the others, so the latency-aware strategies
//! start from a true estimate.

use std::cell::Cell;
use std::str;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_utils::CachePadded;
use replica_router::*;

/// How long a replica takes per event, and one on the slow node.
pub(crate) const NORMAL: Duration = Duration::from_micros(20);
pub(crate) const SLOW: Duration = Duration::from_micros(200);

/// What a replica does with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Fast,
    Slow,
    /// Fails every other event at once (`DaemonError::ProcessFailed`), and
    /// takes the normal time over the others.
    Flaky,
}

/// Events the daemons processed, per seat (a replica of a group), as they
/// counted them: the account the dispatch results are checked against.
#[derive(Default)]
pub(crate) struct Seat {
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl Seat {
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Acquire),
            self.failed.load(Ordering::Acquire),
        )
    }
}

pub(crate) type Board = Arc<Vec<CachePadded<Seat>>>;

/// Seat 0 takes the events of a daemon that was never given a role (none
/// should: it would show as a count the roles do not explain).
pub(crate) const UNSEATED: usize = 0;

thread_local! {
    /// The seat of the daemon that processed the last event delivered on
    /// this thread (delivery runs the daemon on the caller's thread): which
    /// replica served a dispatch, without changing how it is called.
    pub(crate) static SERVED_BY: Cell<usize> = const { Cell::new(UNSEATED) };
}

/// The event that gives a replica its seat and role.
pub(crate) fn cast(seat: usize, role: Role) -> Event {
    Event::new(format!(
        "role {seat} {}",
        format!("{role:?}").to_lowercase()
    ))
}

fn parse_cast(payload: &[u8]) -> Option<(usize, Role)> {
    let text = str::from_utf8(payload.strip_prefix(b"role ")?).ok()?;
    let (seat, role) = text.split_once(' ')?;
    let role = match role {
        "fast" => Role::Fast,
        "slow" => Role::Slow,
        "flaky" => Role::Flaky,
        _ => return None,
    };
    Some((seat.parse().ok()?, role))
}

/// One daemon; see the module docs.
pub(crate) struct Spinner {
    kind: &'static str,
    board: Board,
    seat: usize,
    role: Role,
    turn: u64,
}

impl Spinner {
    /// A daemon with no role yet, counting on `board`.
    pub(crate) fn new(kind: &'static str, board: Board) -> Spinner {
        Spinner {
            kind,
            board,
            seat: UNSEATED,
            role: Role::Fast,
            turn: 0,
        }
    }
}

impl MeshDaemon for Spinner {
    fn name(&self) -> &str {
        self.kind
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        if let Some((seat, role)) = parse_cast(event.payload()) {
            (self.seat, self.role) = (seat, role);
            spin(if role == Role::Slow { SLOW } else { NORMAL });
            return Ok(Vec::new());
        }
        let seat = &self.board[self.seat];
        SERVED_BY.set(self.seat);
        self.turn += 1;
        if self.role == Role::Flaky && self.turn % 2 == 1 {
            seat.failed.fetch_add(1, Ordering::Relaxed);
            return Err(DaemonError::ProcessFailed(
                "flaky: every other event".into(),
            ));
        }
        spin(if self.role == Role::Slow {
            SLOW
        } else {
            NORMAL
        });
        seat.ok.fetch_add(1, Ordering::Relaxed);
        Ok(Vec::new())
    }
}

/// Busy-waits for `d`.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}
