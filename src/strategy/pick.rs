//! Picking: the admission rule every pick honours (`admits`), the one
//! entry point [`pick`] that dispatches to each strategy's pick function,
//! the zone fallback, the drained tier and slow start.

use super::candidates::Candidate;
use super::pool::{Pool, Tier};
use super::{adaptive, consistent, least, random, rotation, weighted};
use super::{PickState, Strategy};
use crate::context::RequestContext;
use crate::sync::coarse_now;

/// The request's tag requirements, resolved against one tier.
#[derive(Debug)]
struct Filter<'c> {
    /// Tag bits a candidate must carry (see `Candidate::tags`).
    mask: u64,
    /// Required tags past the pool's 64 numbered ones (rare), checked on
    /// the candidate itself.
    unnumbered: &'c [crate::context::Label],
}

impl<'c> Filter<'c> {
    /// `None` when a required tag is carried by no candidate.
    #[inline]
    fn new(tier: &Tier, ctx: &'c RequestContext) -> Option<Filter<'c>> {
        let mut filter = Filter {
            mask: 0,
            unnumbered: &[],
        };
        for tag in ctx.tags() {
            match tier.candidates.tag_bit(tag.hash()) {
                Ok(bit) => filter.mask |= bit,
                Err(true) => filter.unnumbered = ctx.tags(),
                Err(false) => return None,
            }
        }
        Some(filter)
    }
}

/// Whether `candidate` may take the request right now: it carries the
/// required tags and its circuit admits traffic.
#[inline]
fn admits(tier: &Tier, candidate: &Candidate, filter: &Filter<'_>) -> bool {
    candidate.tags & filter.mask == filter.mask
        && filter
            .unnumbered
            .iter()
            .all(|t| tier.candidates.carries_tag(candidate, t.hash()))
        && circuit_admits(candidate)
}

/// Picks a candidate of `pool` for `ctx`, or `None` when none admits it:
/// a weighted one if any can take it, else a drained one.
///
/// One function per strategy, each compiled on its own so the common one
/// stays small; a context without zone or tags (the common case) takes a
/// path where the only admission check is the circuit. The result is a
/// pointer, register-sized: the caller turns `None` into its error.
#[inline(always)]
pub(crate) fn pick<'r>(
    strategy: Strategy,
    pool: &'r Pool,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    match pick_in(strategy, &pool.weighted, ctx, state) {
        Some(candidate) => Some(candidate),
        None => pick_drained(strategy, pool, ctx, state),
    }
}

#[cold]
#[inline(never)]
fn pick_drained<'r>(
    strategy: Strategy,
    pool: &'r Pool,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    pick_in(strategy, pool.drained.as_deref()?, ctx, state)
}

#[inline(always)]
fn pick_in<'r>(
    strategy: Strategy,
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    match strategy {
        Strategy::RoundRobin => {
            let picked = pick_rotation(tier, ctx, state);
            ramped(tier, state, picked, |state| pick_rotation(tier, ctx, state))
        }
        Strategy::Random => pick_random(tier, ctx, state),
        Strategy::WeightedRoundRobin => {
            let picked = pick_weighted_rotation(tier, ctx, state);
            ramped(tier, state, picked, |state| {
                pick_weighted_rotation(tier, ctx, state)
            })
        }
        Strategy::WeightedRandom => pick_weighted_random(tier, ctx, state),
        Strategy::LeastConnections => {
            let picked = pick_lowest(tier, ctx, state, least::connections);
            ramped(tier, state, picked, |state| {
                pick_lowest(tier, ctx, state, least::connections)
            })
        }
        Strategy::WeightedLeastConnections => {
            pick_lowest(tier, ctx, state, least::weighted_connections)
        }
        Strategy::PowerOfTwo => {
            let in_flight = |c: &Candidate| c.replica().stats().in_flight();
            let picked = pick_power_of_two(tier, ctx, state, in_flight);
            ramped(tier, state, picked, |state| {
                pick_power_of_two(tier, ctx, state, in_flight)
            })
        }
        Strategy::ConsistentHash => pick_consistent(tier, ctx, state),
        Strategy::LeastLatency => pick_cheaper_of_two(tier, ctx, state),
        Strategy::LeastLoad => pick_lowest(tier, ctx, state, least::load_cost),
        Strategy::Adaptive => pick_adaptive(tier, ctx, state),
    }
}

/// Slow start: a candidate still ramping up after it became healthy is
/// taken only with the probability of its share of the ramp (10% growing
/// linearly to 100% over `slow_start`); passed over, the pick runs again
/// (at most [`RAMP_RETRIES`] times, so that random strategies, which may
/// draw it again, hold it near its share too). No cost when no candidate
/// was ramping as the roster was built.
#[inline(always)]
fn ramped<'r>(
    tier: &'r Tier,
    state: &mut PickState,
    picked: Option<&'r Candidate>,
    again: impl FnMut(&mut PickState) -> Option<&'r Candidate>,
) -> Option<&'r Candidate> {
    match (tier.tuning.ramp_ms, picked) {
        (Some(ramp_ms), Some(candidate)) => ramp(state, candidate, ramp_ms, again),
        _ => picked,
    }
}

/// How many times a slow-start pick runs again past ramping candidates.
const RAMP_RETRIES: usize = 3;

#[cold]
#[inline(never)]
fn ramp<'r>(
    state: &mut PickState,
    mut candidate: &'r Candidate,
    ramp_ms: u32,
    mut again: impl FnMut(&mut PickState) -> Option<&'r Candidate>,
) -> Option<&'r Candidate> {
    // The clock itself: a program that only routes must see the ramp end.
    let now = coarse_now();
    for _ in 0..RAMP_RETRIES {
        let age = now.wrapping_sub(candidate.replica().healthy_since_ms());
        if age >= ramp_ms || state.rng.chance(0.1 + 0.9 * age as f32 / ramp_ms as f32) {
            return Some(candidate);
        }
        match again(state) {
            Some(next) => candidate = next,
            None => break,
        }
    }
    Some(candidate)
}

/// Whether the context asks for nothing but a replica.
#[inline(always)]
fn is_plain(ctx: &RequestContext) -> bool {
    ctx.zone().is_none() && ctx.tags().is_empty()
}

/// Whether `candidate`'s circuit lets it take traffic, or its group has so
/// many circuits open that routing ignores them (`max_ejection_percent`).
#[inline(always)]
fn circuit_admits(candidate: &Candidate) -> bool {
    let replica = candidate.replica();
    replica.stats().routable() || replica.settings().ejection_overflowing()
}

// Inlined into the callers' match: round robin is the common strategy and
// its plain path is a handful of instructions.
#[inline]
fn pick_rotation<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        return rotation::next(tier.candidates.all(), &mut state.cursor, circuit_admits);
    }
    pick_filtered(tier, ctx, |set, _, admit| {
        rotation::next(set, &mut state.cursor, admit)
    })
}

fn pick_random<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        return random::uniform(tier.candidates.all(), &mut state.rng, circuit_admits);
    }
    pick_filtered(tier, ctx, |set, _, admit| {
        random::uniform(set, &mut state.rng, admit)
    })
}

fn pick_weighted_rotation<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        return weighted::next(
            &tier.tables.schedule,
            tier.candidates.all(),
            None,
            &mut state.cursor,
            circuit_admits,
        );
    }
    pick_filtered(tier, ctx, |_, zone, admit| {
        weighted::next(
            &tier.tables.schedule,
            tier.candidates.all(),
            zone,
            &mut state.cursor,
            admit,
        )
    })
}

fn pick_weighted_random<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        let all = tier.candidates.all();
        return weighted::draw(
            tier.tables.alias.as_ref(),
            all,
            all,
            None,
            &mut state.rng,
            circuit_admits,
        );
    }
    pick_filtered(tier, ctx, |set, zone, admit| {
        let alias = tier.tables.alias.as_ref();
        weighted::draw(
            alias,
            tier.candidates.all(),
            set,
            zone,
            &mut state.rng,
            admit,
        )
    })
}

fn pick_lowest<'r, K: PartialOrd + Copy>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
    score: impl Fn(&Candidate) -> K + Copy,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        return least::lowest(
            tier.candidates.all(),
            &mut state.cursor,
            circuit_admits,
            score,
        );
    }
    pick_filtered(tier, ctx, |set, _, admit| {
        least::lowest(set, &mut state.cursor, admit, score)
    })
}

fn pick_power_of_two<'r, K: PartialOrd>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
    cost: impl Fn(&Candidate) -> K + Copy,
) -> Option<&'r Candidate> {
    if is_plain(ctx) {
        return random::power_of_two(tier.candidates.all(), &mut state.rng, circuit_admits, cost);
    }
    pick_filtered(tier, ctx, |set, _, admit| {
        random::power_of_two(set, &mut state.rng, admit, cost)
    })
}

fn pick_cheaper_of_two<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    let decay = tier.tuning.decay;
    if is_plain(ctx) {
        let all = tier.candidates.all();
        return least::cheaper_of_two(all, state, circuit_admits, decay);
    }
    pick_filtered(tier, ctx, |set, _, admit| {
        least::cheaper_of_two(set, state, admit, decay)
    })
}

fn pick_consistent<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    let Some(key) = ctx.routing_key_hash() else {
        return pick_rotation(tier, ctx, state);
    };
    let table = tier.tables.slots.as_ref()?;
    let all = tier.candidates.all();
    let balance = tier.tuning.balance;
    if is_plain(ctx) {
        return consistent::keyed(table, all, all, None, key, balance, circuit_admits);
    }
    pick_filtered(tier, ctx, |set, zone, admit| {
        consistent::keyed(table, all, set, zone, key, balance, admit)
    })
}

fn pick_adaptive<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<&'r Candidate> {
    if ctx.routing_key_hash().is_some() {
        return pick_consistent(tier, ctx, state);
    }
    let (schedule, all) = (&tier.tables.schedule, tier.candidates.all());
    let decay = tier.tuning.decay;
    if is_plain(ctx) {
        return adaptive::pick(schedule, all, all, None, state, circuit_admits, decay);
    }
    pick_filtered(tier, ctx, |set, zone, admit| {
        adaptive::pick(schedule, all, set, zone, state, admit, decay)
    })
}

/// Applies the context's tag requirements and zone preference around `pick`:
/// first among the zone's candidates, then among all.
#[inline(never)]
fn pick_filtered<'r>(
    tier: &'r Tier,
    ctx: &RequestContext,
    mut pick: impl FnMut(
        &'r [Candidate],
        Option<u8>,
        &dyn Fn(&Candidate) -> bool,
    ) -> Option<&'r Candidate>,
) -> Option<&'r Candidate> {
    let filter = Filter::new(tier, ctx)?;
    let admit = |c: &Candidate| admits(tier, c, &filter);
    if let Some(zone) = ctx.zone() {
        if let Some((z, local)) = tier.candidates.zone(zone.hash()) {
            if let Some(candidate) = pick(local, Some(z), &admit) {
                return Some(candidate);
            }
        }
    }
    pick(tier.candidates.all(), None, &admit)
}
