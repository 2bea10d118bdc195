//! Adaptive: chooses a rule per request.
//!
//! - With a routing key or session: consistent hashing (handled by the caller).
//! - Otherwise: the smooth weighted round-robin pick, checked against one
//!   other member drawn at random; if that member has fewer deliveries in
//!   flight, it wins instead (power of two choices, with the schedule as one
//!   of the two). While load is even this follows node weights exactly; when
//!   it is not, a busy member is never chosen over an idle one drawn.

use super::candidates::Candidate;
use super::random::Rng;
use super::weighted;

#[inline]
pub(super) fn pick<'r>(
    schedule: &[u8],
    all: &'r [Candidate],
    set: &'r [Candidate],
    zone: Option<u8>,
    cursor: &mut usize,
    rng: &mut Rng,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    let scheduled = weighted::next(schedule, all, zone, cursor, &admit)?;
    if set.len() < 2 {
        return Some(scheduled);
    }
    // A member other than the scheduled one (its neighbour when the draw
    // lands on it). Zone sets hold their own copies, so compare identities.
    let mut i = rng.below(set.len());
    if set[i].origin_hash() == scheduled.origin_hash() {
        i = if i + 1 == set.len() { 0 } else { i + 1 };
    }
    let other = &set[i];
    if other.replica().stats().in_flight() < scheduled.replica().stats().in_flight() && admit(other)
    {
        Some(other)
    } else {
        Some(scheduled)
    }
}
