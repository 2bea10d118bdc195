//! Uniform random choice with a per-router generator: no shared state, no
//! atomics, so routers on different threads never contend.

use std::sync::atomic::{AtomicU64, Ordering};

use super::rotation::scan_from;
use crate::context::{mix64, RequestContext};
use crate::roster::Roster;

/// xorshift64*: fast and good enough to spread load; not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded from a process-wide counter, so routers differ.
    pub(crate) fn new() -> Self {
        static SEED: AtomicU64 = AtomicU64::new(0x5eed_0f_7e91_1ca5);
        let s = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        Rng(mix64(s) | 1)
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

    /// Uniform in `0..n` (multiply-shift, no division); `n` must be > 0.
    #[inline]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A uniformly random admissible member of `set`: a random start, then the
/// first admissible member from there.
#[inline]
pub(super) fn uniform(
    roster: &Roster,
    set: &[u8],
    ctx: &RequestContext,
    rng: &mut Rng,
) -> Option<u8> {
    if set.is_empty() {
        return None;
    }
    let start = rng.below(set.len());
    scan_from(roster, set, ctx, start).map(|(_, i)| i)
}
