//! Adaptive: chooses a rule per request.
//!
//! - With a routing key or session: consistent hashing (handled by the caller).
//! - Otherwise: the smooth weighted round-robin pick, checked against one
//!   other candidate drawn at random; if that one is clearly cheaper by the
//!   latency cost (`least::latency_costs`: the faded latency estimate times
//!   the deliveries in flight plus one; cheaper by a third), it wins instead
//!   (power of two choices, with the schedule as one of the two). While
//!   replicas are alike this follows node weights; a slow, busy or failing
//!   one is passed over.

use super::candidates::Candidate;
use super::least;
use super::random::Rng;
use super::weighted;
use crate::daemon::Decay;

#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn pick<'r>(
    schedule: &[u8],
    all: &'r [Candidate],
    set: &'r [Candidate],
    zone: Option<u8>,
    cursor: &mut usize,
    rng: &mut Rng,
    admit: impl Fn(&Candidate) -> bool,
    decay: Decay,
) -> Option<&'r Candidate> {
    let scheduled = weighted::next(schedule, all, zone, cursor, &admit)?;
    if set.len() < 2 {
        return Some(scheduled);
    }
    // A candidate other than the scheduled one (its neighbour when the draw
    // lands on it). `set` may be a zone's slice, so compare identities.
    let mut i = rng.below(set.len());
    if set[i].origin_hash() == scheduled.origin_hash() {
        i = if i + 1 == set.len() { 0 } else { i + 1 };
    }
    let other = &set[i];
    // Now and then an idle scheduled one is kept anyway, to measure it
    // again (see `least::explore`).
    let (cost_scheduled, cost_other) = least::latency_costs(scheduled, other, decay);
    if least::clearly_cheaper(cost_other, cost_scheduled)
        && admit(other)
        && !least::explore(scheduled, rng)
    {
        Some(other)
    } else {
        Some(scheduled)
    }
}
