//! Load-balancing strategies: one short pick function per family, each reading
//! an immutable [`Roster`] and the members' live statistics.
//!
//! Every pick honours the same admission rule (see [`admissible`]): the member
//! is healthy (it is in the roster's healthy set), its circuit admits traffic,
//! and its node carries every tag the request requires. A zone preference is
//! applied on top: the pick runs over the healthy members in that zone first,
//! then over all healthy members.

pub(crate) mod maglev;
mod random;
mod rotation;

use crate::context::RequestContext;
use crate::roster::{Member, Roster};

pub(crate) use random::Rng;

/// How a group chooses a member for each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Each router walks the healthy members in index order, one step per route.
    #[default]
    RoundRobin,
    /// A uniformly random healthy member (a per-router xorshift generator).
    Random,
    /// Round robin in proportion to node weights (not yet available).
    WeightedRoundRobin,
    /// Random in proportion to node weights (not yet available).
    WeightedRandom,
    /// The member with the fewest deliveries in flight (not yet available).
    LeastConnections,
    /// The member with the fewest in-flight deliveries per unit of weight (not yet available).
    WeightedLeastConnections,
    /// Two distinct random members; the one with fewer in flight (not yet available).
    PowerOfTwo,
    /// Maglev consistent hashing on the routing key, else the session, else
    /// round robin. Sticky, balanced and minimally disruptive: the table is a
    /// function of the healthy members' origin hashes alone.
    ConsistentHash,
    /// The member with the lowest latency EWMA (not yet available).
    LeastLatency,
    /// The member with the lowest combined load (not yet available).
    LeastLoad,
    /// A rule that picks among the others per request (not yet available).
    Adaptive,
}

impl Strategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Strategy; 11] = [
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::WeightedRoundRobin,
        Strategy::WeightedRandom,
        Strategy::LeastConnections,
        Strategy::WeightedLeastConnections,
        Strategy::PowerOfTwo,
        Strategy::ConsistentHash,
        Strategy::LeastLatency,
        Strategy::LeastLoad,
        Strategy::Adaptive,
    ];

    /// Whether this build can route with the strategy; spawning a group with
    /// one it cannot is `InvalidConfig`, never a silent fallback.
    pub fn is_available(self) -> bool {
        matches!(
            self,
            Strategy::RoundRobin | Strategy::Random | Strategy::ConsistentHash
        )
    }

    /// Whether the roster must carry a Maglev table for this strategy.
    pub(crate) fn needs_maglev(self) -> bool {
        matches!(self, Strategy::ConsistentHash | Strategy::Adaptive)
    }
}

/// A router's own mutable state: its rotation cursor and random generator.
#[derive(Debug, Clone)]
pub(crate) struct PickState {
    pub(crate) cursor: usize,
    pub(crate) rng: Rng,
}

impl PickState {
    pub(crate) fn new() -> Self {
        let rng = Rng::new();
        // Start each router at a different place so many routers spread at once.
        let cursor = rng.peek() as usize;
        PickState { cursor, rng }
    }
}

/// Whether `member` may take this request right now.
#[inline]
pub(crate) fn admissible(member: &Member, ctx: &RequestContext) -> bool {
    member.stats.routable() && ctx.tags().iter().all(|t| member.has_tag(t.hash))
}

/// Picks a member index for `ctx`, or `None` when no member is admissible.
#[inline]
pub(crate) fn pick(
    strategy: Strategy,
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<u8> {
    if let Some(zone) = ctx.zone() {
        if let Some(local) = roster.healthy_in_zone(zone.hash) {
            if let Some(i) = pick_among(strategy, roster, local, ctx, state) {
                return Some(i);
            }
        }
    }
    pick_among(strategy, roster, roster.healthy(), ctx, state)
}

#[inline]
fn pick_among(
    strategy: Strategy,
    roster: &Roster,
    set: &[u8],
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<u8> {
    match strategy {
        Strategy::Random => random::uniform(roster, set, ctx, &mut state.rng),
        Strategy::ConsistentHash => match ctx.routing_key_hash() {
            Some(key) => maglev::keyed(roster, set, ctx, key),
            None => rotation::next(roster, set, ctx, &mut state.cursor),
        },
        _ => rotation::next(roster, set, ctx, &mut state.cursor),
    }
}

/// Routes `ctx` on `roster`: the chosen member's origin hash, or why none.
#[inline]
pub(crate) fn route(
    strategy: Strategy,
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Result<u64, crate::GroupError> {
    match pick(strategy, roster, ctx, state) {
        Some(i) => Ok(roster.member(i).origin_hash),
        None if roster.is_closed() => Err(crate::GroupError::ShuttingDown),
        None => Err(crate::GroupError::NoHealthyMember),
    }
}
