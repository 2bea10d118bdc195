//! Weighted strategies over node weights, with tables the writer precomputes
//! in each pool: a smooth weighted round-robin schedule and an alias table.

use super::candidates::Candidate;
use super::random::Rng;
use super::rotation;

/// Longest schedule the writer builds. Weights are divided by their gcd; if
/// the cycle is still longer, they are scaled down to fit (each keeps at
/// least 1), so ratios are exact for ordinary weights (e.g. 100 / 200 / 300)
/// and within 1/`MAX_CYCLE` otherwise.
const MAX_CYCLE: u64 = 16_384;

/// Effective weights: node weights, or all 1 when every weight is 0.
fn weights(hot: &[Candidate]) -> Vec<u64> {
    if hot.iter().all(|h| h.weight == 0) {
        vec![1; hot.len()]
    } else {
        hot.iter().map(|h| u64::from(h.weight)).collect()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One cycle of smooth weighted round robin (nginx's rule: every member
/// gains its weight, the leader is chosen and pays the total), as positions
/// in `hot`. Over a cycle each member appears exactly weight ÷ gcd times, and
/// heavy members are interleaved with light ones rather than bunched.
pub(super) fn schedule(hot: &[Candidate]) -> Box<[u8]> {
    let mut w = weights(hot);
    let g = w.iter().copied().filter(|&x| x > 0).fold(0, gcd).max(1);
    w.iter_mut().for_each(|x| *x /= g);
    let total: u64 = w.iter().sum();
    if total > MAX_CYCLE {
        w.iter_mut()
            .filter(|x| **x > 0)
            .for_each(|x| *x = (*x * MAX_CYCLE / total).max(1));
    }
    let total: i64 = w.iter().sum::<u64>() as i64;
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, &wi) in w.iter().enumerate() {
            current[i] += wi as i64;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u8);
    }
    out.into()
}

/// Walker's alias table (Vose's construction): O(1) weighted draws.
#[derive(Debug, Clone)]
pub(super) struct AliasTable {
    /// Per column: probability (scaled to 2^32) of keeping the column.
    keep: Box<[u64]>,
    /// Per column: the position drawn otherwise.
    alias: Box<[u8]>,
}

impl AliasTable {
    pub(super) fn build(hot: &[Candidate]) -> Option<AliasTable> {
        let n = hot.len();
        if n == 0 {
            return None;
        }
        let w = weights(hot);
        let total: u128 = w.iter().map(|&x| u128::from(x)).sum();
        // Scaled so that the average column is exactly 2^32.
        let mut scaled: Vec<u128> = w
            .iter()
            .map(|&x| (u128::from(x) * n as u128) << 32)
            .collect();
        let unit = total << 32;
        let mut keep = vec![1u64 << 32; n];
        let mut alias: Vec<u8> = (0..n as u8).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < unit);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = ((scaled[s] << 32) / unit) as u64;
            alias[s] = l as u8;
            scaled[l] = scaled[l] + scaled[s] - unit;
            if scaled[l] < unit {
                large.pop();
                small.push(l);
            }
        }
        Some(AliasTable {
            keep: keep.into(),
            alias: alias.into(),
        })
    }

    /// A position drawn in proportion to its weight.
    #[inline]
    pub(super) fn draw(&self, rng: &mut Rng) -> usize {
        let column = rng.below(self.keep.len());
        if rng.next_u64() >> 32 < self.keep[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

/// Smooth weighted round robin: the next admissible entry of the pool's
/// schedule (in `zone`, when given). Members of weight 0 have no entry: they
/// are the last resort, taking turns, when no member with a weight admits
/// the request (tests/regression_weight_zero_member_is_a_last_resort.rs).
#[inline]
pub(super) fn next<'r>(
    schedule: &[u8],
    all: &'r [Candidate],
    zone: Option<u8>,
    cursor: &mut usize,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    let hot = all;
    let in_zone = |h: &Candidate| zone.is_none_or(|z| h.zone == z) && admit(h);
    if let Some((at, position)) =
        rotation::scan_from(schedule, *cursor, |&p| in_zone(&hot[p as usize]))
    {
        *cursor = at + 1;
        return Some(&hot[*position as usize]);
    }
    // The last resort: plain rotation over every qualifying member.
    rotation::next(hot, cursor, in_zone)
}

/// Weighted random: an alias-table draw; when it falls on a member that
/// cannot take the request (or outside `zone`), a weighted linear draw over
/// the admissible members of `set`.
#[inline]
pub(super) fn draw<'r>(
    alias: Option<&AliasTable>,
    all: &'r [Candidate],
    set: &'r [Candidate],
    zone: Option<u8>,
    rng: &mut Rng,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    if let Some(table) = alias {
        let hot = &all[table.draw(rng)];
        if zone.is_none_or(|z| hot.zone == z) && admit(hot) {
            return Some(hot);
        }
    }
    let weight = |h: &Candidate| u64::from(h.weight.max(1));
    let total: u64 = set.iter().filter(|h| admit(h)).map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = ((u128::from(rng.next_u64()) * u128::from(total)) >> 64) as u64;
    for h in set.iter().filter(|h| admit(h)) {
        if ticket < weight(h) {
            return Some(h);
        }
        ticket -= weight(h);
    }
    None
}
