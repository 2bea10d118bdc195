//! Uniform random choice with a per-router generator: no shared state, no
//! atomics, so routers on different threads never contend.

use super::candidates::Candidate;
use super::rotation::scan_from;
use crate::hash::mix64;
use crate::sync::process_counter;

/// A seed no other call in this process got: one process-wide increment.
pub(crate) fn fresh_seed() -> u64 {
    process_counter!(SEEDS = 0x5eed_0f7e_911c_a5d1);
    SEEDS.fetch_add(
        0x9e37_79b9_7f4a_7c15,
        crate::sync::atomic::Ordering::Relaxed,
    )
}
/// xorshift64*: fast and good enough to spread load; not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value).
    pub(crate) fn new(seed: u64) -> Self {
        Rng(mix64(seed) | 1)
    }

    /// The next value without advancing.
    pub(crate) fn peek(&self) -> u64 {
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `true` with probability `p` (clamped to 0..=1).
    #[inline]
    pub(crate) fn chance(&mut self, p: f32) -> bool {
        ((self.next_u64() >> 40) as f32) < p * (1u64 << 24) as f32
    }

    /// Uniform in `0..n` (multiply-shift, no division); `n` must be > 0.
    #[inline]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A uniformly random admissible member of `set`: a random start, then the
/// first admissible member from there.
#[inline(always)]
pub(super) fn uniform<'r>(
    set: &'r [Candidate],
    rng: &mut Rng,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    if set.is_empty() {
        return None;
    }
    let start = rng.below(set.len());
    let hot = &set[start];
    if admit(hot) {
        return Some(hot);
    }
    scan_from(set, start, admit).map(|(_, hot)| hot)
}

/// Power of two choices: two distinct random candidates; the one of lower
/// `cost` wins (the first drawn on a tie, itself random, so equal
/// candidates take turns). When neither is admissible, the first admissible
/// candidate after a random place.
#[inline]
pub(super) fn power_of_two<'r, K: PartialOrd>(
    set: &'r [Candidate],
    rng: &mut Rng,
    admit: impl Fn(&Candidate) -> bool,
    cost: impl Fn(&Candidate) -> K,
) -> Option<&'r Candidate> {
    let (a, b) = two_distinct(set, rng)?;
    let Some(b) = b else {
        return admit(a).then_some(a);
    };
    match (admit(a), admit(b)) {
        (true, true) if cost(b) < cost(a) => Some(b),
        (true, _) => Some(a),
        (false, true) => Some(b),
        (false, false) => {
            let start = rng.below(set.len());
            scan_from(set, start, admit).map(|(_, hot)| hot)
        }
    }
}

/// Two distinct uniformly random members (one when the set has one).
#[inline]
pub(super) fn two_distinct<'r>(
    set: &'r [Candidate],
    rng: &mut Rng,
) -> Option<(&'r Candidate, Option<&'r Candidate>)> {
    let n = set.len();
    if n < 2 {
        return set.first().map(|a| (a, None));
    }
    let a = rng.below(n);
    let mut b = rng.below(n - 1);
    if b >= a {
        b += 1;
    }
    Some((&set[a], Some(&set[b])))
}
