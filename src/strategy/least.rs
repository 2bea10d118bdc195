//! The exact-minimum strategies: scan the candidates and take the lowest
//! score. The scan starts just after the member chosen last time and only a
//! strictly lower score replaces the best so far, so tied members take turns
//! instead of the first one always winning.
//!
//! O(n) in the member count: at 255 members a scan reads 255 stats lines.

use super::candidates::Candidate;
use super::random::Rng;
use super::rotation::scan_from;
use super::PickState;
use crate::daemon::Decay;

/// The admissible member of `set` with the lowest `score`; ties rotate.
///
/// The first pass reads only the scores (one stats line per member) and
/// checks the winner's admission; circuits are rarely open, so a second pass
/// that checks every member runs only when the winner cannot take it.
#[inline]
pub(super) fn lowest<'r, K: PartialOrd + Copy>(
    set: &'r [Candidate],
    cursor: &mut usize,
    admit: impl Fn(&Candidate) -> bool,
    score: impl Fn(&Candidate) -> K,
) -> Option<&'r Candidate> {
    let n = set.len();
    if n == 0 {
        return None;
    }
    let start = if *cursor < n { *cursor } else { 0 };
    let (mut best, mut best_score) = (start, score(&set[start]));
    let (before, after) = set.split_at(start);
    for (j, hot) in after.iter().enumerate().skip(1) {
        let s = score(hot);
        if s < best_score {
            (best, best_score) = (start + j, s);
        }
    }
    for (j, hot) in before.iter().enumerate() {
        let s = score(hot);
        if s < best_score {
            (best, best_score) = (j, s);
        }
    }
    // The next route starts after the member chosen now: the first tied
    // member after the last one chosen wins, so tied members take turns.
    if admit(&set[best]) {
        *cursor = best + 1;
        return Some(&set[best]);
    }
    let (position, hot) = lowest_admissible(set, start, admit, score)?;
    *cursor = position + 1;
    Some(hot)
}

#[inline(never)]
fn lowest_admissible<K: PartialOrd + Copy>(
    set: &[Candidate],
    start: usize,
    admit: impl Fn(&Candidate) -> bool,
    score: impl Fn(&Candidate) -> K,
) -> Option<(usize, &Candidate)> {
    let mut best: Option<(usize, K)> = None;
    for j in (start..set.len()).chain(0..start) {
        let hot = &set[j];
        if !admit(hot) {
            continue;
        }
        let s = score(hot);
        if best.is_none_or(|(_, b)| s < b) {
            best = Some((j, s));
        }
    }
    best.map(|(j, _)| (j, &set[j]))
}

/// `LeastConnections`: deliveries in flight.
#[inline]
pub(super) fn connections(hot: &Candidate) -> u32 {
    hot.replica().stats().in_flight()
}

/// `WeightedLeastConnections`: (in flight + 1) ÷ weight, so that among idle
/// members the heavier is preferred; weight 0 is never preferred. Compared
/// exactly, as fractions, so equal ratios tie.
#[inline]
pub(super) fn weighted_connections(hot: &Candidate) -> Ratio {
    Ratio {
        num: u64::from(hot.replica().stats().in_flight()) + 1,
        den: u64::from(hot.weight),
    }
}

/// A non-negative fraction compared by cross-multiplication; a zero
/// denominator is larger than every fraction with a non-zero one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ratio {
    num: u64,
    den: u64,
}

impl PartialEq for Ratio {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Ratio {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        if self.den == 0 || other.den == 0 {
            // Both zero: equal. One zero: that one is larger.
            return Some(other.den.cmp(&self.den));
        }
        // num ≤ 2^32 and den < 2^32: the products fit in u64.
        Some((self.num * other.den).cmp(&(other.num * self.den)))
    }
}

/// `LeastLatency`'s (and `Adaptive`'s) costs of `a` and `b`: each latency
/// estimate faded with time, times its deliveries in flight plus one
/// (Finagle's and tower's cost). A replica not measured yet counts 1 ns, so
/// it is tried as soon as it comes up, and still costs more when busy.
///
/// Both are given up to one common factor: the older estimate is faded to
/// the newer one's stamp, which leaves their ratio, the only thing compared
/// ([`clearly_cheaper`]), as fading both to now would. So a pair costs one
/// exponential at most, and none when both were updated in the same
/// millisecond (a busy group).
#[inline]
pub(super) fn latency_costs(a: &Candidate, b: &Candidate, decay: Decay) -> (f32, f32) {
    let (a, b) = (a.replica().stats(), b.replica().stats());
    let ((mut ea, ta), (mut eb, tb)) = (a.latency(), b.latency());
    // Stamps wrap after 49 days; their difference, read signed, does not.
    let newer_b = tb.wrapping_sub(ta) as i32;
    if newer_b > 0 {
        ea *= decay.weight(newer_b.unsigned_abs());
    } else if newer_b < 0 {
        eb *= decay.weight(newer_b.unsigned_abs());
    }
    (
        ea.max(1.0) * (a.in_flight() + 1) as f32,
        eb.max(1.0) * (b.in_flight() + 1) as f32,
    )
}

/// Whether cost `a` is clearly below cost `b`: by a third or more. Closer
/// costs are a tie, and ties take turns: estimates of replicas equally fast
/// differ by noise, which must not pick a winner. A replica with one more
/// delivery in flight than its peer costs twice as much, clearly more.
#[inline]
pub(super) fn clearly_cheaper(a: f32, b: f32) -> bool {
    a * 3.0 < b * 2.0
}

/// `LeastLatency`'s pick: the admissible candidate at the rotation cursor
/// against the next admissible one; the next wins when clearly cheaper (see
/// [`clearly_cheaper`]), and the cursor moves past the one chosen. So equal
/// candidates take turns exactly, a slow, busy or failing one loses to its
/// neighbour, and a pick reads two candidates whatever the group's size
/// (power of two choices, drawn by rotation instead of at random). One turn
/// in [`EXPLORE`] the first is taken anyway, to measure it again: a passing
/// peak does not keep a fast replica out for long, and a slow one gets a
/// share too small to reach the 99th percentile (see [`explore`]). When
/// the winner still costs more than twice the router's floor (both were
/// bad: a slow replica next to a failing one), the next few are looked at
/// too ([`cheapest_near`]).
#[inline]
pub(super) fn cheaper_of_two<'r>(
    set: &'r [Candidate],
    state: &mut PickState,
    admit: impl Fn(&Candidate) -> bool,
    decay: Decay,
) -> Option<&'r Candidate> {
    let n = set.len();
    let (first, a) = scan_from(set, state.cursor, &admit)?;
    let next = if first + 1 == n { 0 } else { first + 1 };
    let Some((second, b)) = scan_from(set, next, &admit).filter(|&(s, _)| s != first) else {
        state.cursor = first + 1;
        return Some(a);
    };
    let (cost_a, cost_b) = latency_costs(a, b, decay);
    state.floor.note(cost_a.min(cost_b));
    let (winner, cost) = if !clearly_cheaper(cost_b, cost_a) {
        (first, cost_a)
    } else if explore(a, &mut state.rng) {
        state.cursor = first + 1;
        return Some(a);
    } else {
        (second, cost_b)
    };
    let chosen =
        look_further(set, state, &set[winner], cost, second, &admit, decay).unwrap_or(winner);
    state.cursor = chosen + 1;
    Some(&set[chosen])
}

/// When `winner`, at `cost`, costs more than twice the router's floor (the
/// pair it won was bad, see `Floor`): the position of a candidate among the
/// next few after position `last` that costs under half as much, if any
/// (see [`cheapest_near`]).
#[inline(always)]
pub(super) fn look_further(
    set: &[Candidate],
    state: &mut PickState,
    winner: &Candidate,
    cost: f32,
    last: usize,
    admit: impl Fn(&Candidate) -> bool,
    decay: Decay,
) -> Option<usize> {
    if !state.floor.exceeded_by(cost) {
        return None;
    }
    let after = if last + 1 >= set.len() { 0 } else { last + 1 };
    let (j, cost) = cheapest_near(set, winner, after, admit, decay)?;
    state.floor.note(cost);
    Some(j)
}

/// How many candidates past a bad pair [`cheapest_near`] looks at, at most:
/// a bound on a pick's cost in a large group.
const LOOK: usize = 8;

/// The cheapest admissible candidate among up to [`LOOK`] of `set` from
/// position `from` (wrapping, never past the whole set) when it costs under
/// half as much as `best` (a margin wider than noise between equally fast
/// replicas), with its position and cost; `None` when `best` stays.
#[cold]
#[inline(never)]
fn cheapest_near<'r>(
    set: &'r [Candidate],
    mut best: &'r Candidate,
    from: usize,
    admit: impl Fn(&Candidate) -> bool,
    decay: Decay,
) -> Option<(usize, f32)> {
    let n = set.len();
    let mut found = None;
    let mut j = from;
    for _ in 0..n.min(LOOK) {
        if j >= n {
            j = 0;
        }
        let candidate = &set[j];
        if candidate.origin_hash() != best.origin_hash() && admit(candidate) {
            let (cost_best, cost) = latency_costs(best, candidate, decay);
            if cost * 2.0 < cost_best {
                (best, found) = (candidate, Some((j, cost)));
            }
        }
        j += 1;
    }
    found
}

/// One turn in this many, `LeastLatency` takes the replica whose turn it is
/// even when its neighbour looks cheaper (see [`cheaper_of_two`]).
pub(super) const EXPLORE: usize = 128;

/// Whether to take `passed_over` anyway, to measure it again: one turn in
/// [`EXPLORE`], and only while it is idle. A busy one gains nothing from
/// another delivery; it is measured when its deliveries finish.
#[inline]
pub(super) fn explore(passed_over: &Candidate, rng: &mut Rng) -> bool {
    passed_over.replica().stats().in_flight() == 0 && rng.below(EXPLORE) == 0
}

/// `LeastLoad`: `load + in_flight + 10 × error_rate`, where `load` is the
/// daemon's own `MeshDaemon::load()` sampled after its last event,
/// `in_flight` the deliveries under way, and `error_rate` the fraction of
/// its processed events that failed. All but `in_flight` are combined once
/// per processed event, so a route adds two numbers per candidate.
#[inline]
pub(super) fn load_cost(candidate: &Candidate) -> f32 {
    candidate.replica().stats().load_cost()
}
