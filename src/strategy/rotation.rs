//! Round robin: each router walks the candidate set one step per route,
//! skipping members that are not admissible.

use super::admissible;
use crate::context::RequestContext;
use crate::roster::Roster;

/// The next admissible member of `set` at or after `cursor`; advances it.
#[inline]
pub(super) fn next(
    roster: &Roster,
    set: &[u8],
    ctx: &RequestContext,
    cursor: &mut usize,
) -> Option<u8> {
    let start = *cursor;
    let found = scan_from(roster, set, ctx, start)?;
    *cursor = found.0 + 1;
    Some(found.1)
}

/// The first admissible member of `set` at or after position `start`
/// (wrapping), as (position, member index). `start` may be any number: a
/// cursor left over from a larger roster wraps onto this one.
#[inline]
pub(super) fn scan_from(
    roster: &Roster,
    set: &[u8],
    ctx: &RequestContext,
    start: usize,
) -> Option<(usize, u8)> {
    let n = set.len();
    if n == 0 {
        return None;
    }
    let mut j = if start < n { start } else { start % n };
    for _ in 0..n {
        let i = set[j];
        if admissible(roster.member(i), ctx) {
            return Some((j, i));
        }
        j += 1;
        if j == n {
            j = 0;
        }
    }
    None
}
