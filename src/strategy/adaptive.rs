//! Adaptive: chooses a rule per request.
//!
//! - With a routing key or session: consistent hashing (handled by the caller).
//! - Otherwise: the smooth weighted round-robin pick, checked against one
//!   other candidate drawn at random; if that one is clearly cheaper by the
//!   latency cost (`least::latency_costs`: the faded latency estimate times
//!   the deliveries in flight plus one; cheaper by a third), it wins instead
//!   (power of two choices, with the schedule as one of the two). While
//!   replicas are alike this follows node weights; a slow, busy or failing
//!   one is passed over. When both are bad (the winner costs more than
//!   twice the router's floor, see `Floor`), the next few candidates after
//!   the drawn one are looked at too, and the cheapest wins.

use super::candidates::Candidate;
use super::least;
use super::weighted;
use super::PickState;
use crate::daemon::Decay;

#[inline]
pub(super) fn pick<'r>(
    schedule: &[u8],
    all: &'r [Candidate],
    set: &'r [Candidate],
    zone: Option<u8>,
    state: &mut PickState,
    admit: impl Fn(&Candidate) -> bool,
    decay: Decay,
) -> Option<&'r Candidate> {
    let scheduled = weighted::next(schedule, all, zone, &mut state.cursor, &admit)?;
    let n = set.len();
    if n < 2 {
        return Some(scheduled);
    }
    // A candidate other than the scheduled one, uniform over the others: a
    // draw that lands on the scheduled one moves on by 1..n-1 places. `set`
    // may be a zone's slice, so compare identities.
    let mut i = state.rng.below(n);
    if set[i].origin_hash() == scheduled.origin_hash() {
        i += 1 + state.rng.below(n - 1);
        if i >= n {
            i -= n;
        }
    }
    let other = &set[i];
    let (cost_scheduled, cost_other) = least::latency_costs(scheduled, other, decay);
    state.floor.note(cost_scheduled.min(cost_other));
    // Now and then an idle scheduled one is kept anyway, to measure it
    // again (see `least::explore`).
    let (winner, cost) = if !least::clearly_cheaper(cost_other, cost_scheduled) || !admit(other) {
        (scheduled, cost_scheduled)
    } else if least::explore(scheduled, &mut state.rng) {
        return Some(scheduled);
    } else {
        (other, cost_other)
    };
    let further = least::look_further(set, state, winner, cost, i, admit, decay);
    Some(further.map_or(winner, |j| &set[j]))
}
