//! Round robin: each router walks the candidate set one step per route,
//! skipping members that are not admissible.

use super::candidates::Candidate;

/// The next admissible member of `set` at or after `cursor`; advances it.
#[inline(always)]
pub(super) fn next<'r>(
    set: &'r [Candidate],
    cursor: &mut usize,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    // The common case, kept small so it needs few registers: the member
    // under the cursor takes it.
    if let Some(hot) = set.get(*cursor) {
        if admit(hot) {
            advance(cursor, *cursor, set.len());
            return Some(hot);
        }
    }
    next_scan(set, cursor, admit)
}

#[inline(never)]
fn next_scan<'r>(
    set: &'r [Candidate],
    cursor: &mut usize,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    let (position, hot) = scan_from(set, *cursor, admit)?;
    advance(cursor, position, set.len());
    Some(hot)
}

/// Moves the cursor past `position`, wrapping without a division.
#[inline(always)]
fn advance(cursor: &mut usize, position: usize, n: usize) {
    *cursor = if position + 1 >= n { 0 } else { position + 1 };
}

/// The first element of `items` at or after position `start` (wrapping)
/// that `accept` takes, with its position. `start` may be any number: a
/// cursor left over from a larger pool wraps onto this one.
#[inline]
pub(super) fn scan_from<T>(
    items: &[T],
    start: usize,
    accept: impl Fn(&T) -> bool,
) -> Option<(usize, &T)> {
    let n = items.len();
    let start = if start < n {
        start
    } else {
        start.checked_rem(n)?
    };
    // Two plain loops: the first element usually takes it.
    for (j, item) in items.iter().enumerate().skip(start) {
        if accept(item) {
            return Some((j, item));
        }
    }
    items[..start]
        .iter()
        .enumerate()
        .find(|(_, item)| accept(item))
}
