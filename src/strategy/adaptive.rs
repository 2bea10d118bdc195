//! Adaptive: chooses a rule per request.
//!
//! - With a routing key or session: consistent hashing (handled by the caller).
//! - Otherwise two distinct members are drawn at random; if their in-flight
//!   counts differ, load is uneven and the less loaded one wins (power of two
//!   choices);
//! - if they are equal, load is even and smooth weighted round robin decides,
//!   which follows node weights exactly.

use super::random::{two_distinct, Rng};
use super::weighted;
use crate::roster::{Hot, Roster};

#[inline]
pub(super) fn pick<'r>(
    roster: &'r Roster,
    set: &'r [Hot],
    zone: Option<u8>,
    cursor: &mut usize,
    rng: &mut Rng,
    admit: impl Fn(&Hot) -> bool,
) -> Option<&'r Hot> {
    if let Some((a, Some(b))) = two_distinct(set, rng) {
        let (fa, fb) = (a.stats.in_flight(), b.stats.in_flight());
        if fa != fb {
            let (less, more) = if fa < fb { (a, b) } else { (b, a) };
            if admit(less) {
                return Some(less);
            }
            if admit(more) {
                return Some(more);
            }
        }
    }
    weighted::next(roster, zone, cursor, admit)
}
