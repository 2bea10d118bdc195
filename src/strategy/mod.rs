//! Load-balancing strategies: one short pick function per family, each reading
//! an immutable [`Roster`] and the members' live statistics.
//!
//! Every pick honours the same admission rule (see [`admissible`]): the member
//! is healthy (it is in the roster's healthy set), its circuit admits traffic,
//! and its node carries every tag the request requires. A zone preference is
//! applied on top: the pick runs over the healthy members in that zone first,
//! then over all healthy members.

mod adaptive;
mod least;
pub(crate) mod maglev;
mod random;
mod rotation;
pub(crate) mod weighted;

use crate::context::RequestContext;
use crate::roster::{Hot, Roster};

pub(crate) use random::Rng;

/// How a group chooses a member for each request.
///
/// Every strategy picks only healthy members whose circuit admits traffic
/// and whose node carries the request's required tags; with a zone
/// preference it picks among the zone's members first. The weighted ones use
/// node weights ([`NodeInfo::with_weight`](crate::NodeInfo::with_weight),
/// default 100; when every weight is 0, all count as equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Each router walks the healthy members in index order, one per route.
    #[default]
    RoundRobin,
    /// A uniformly random member (a per-router xorshift generator).
    Random,
    /// Smooth weighted round robin: over one cycle each member gets exactly
    /// its weight's share, heavy members interleaved with light ones. The
    /// schedule is precomputed by the writer with each roster.
    WeightedRoundRobin,
    /// Random in proportion to weight: an O(1) draw from an alias table the
    /// writer builds with each roster.
    WeightedRandom,
    /// The member with the fewest deliveries in flight; ties rotate.
    LeastConnections,
    /// The member with the lowest (in flight + 1) ÷ weight; ties rotate.
    WeightedLeastConnections,
    /// Two distinct random members; the one with fewer in flight wins.
    PowerOfTwo,
    /// Maglev consistent hashing on the routing key, else the session, else
    /// round robin. Sticky, balanced and minimally disruptive: the table is a
    /// function of the healthy members' origin hashes alone.
    ConsistentHash,
    /// The member with the lowest latency EWMA; members without a
    /// measurement are tried first; ties rotate.
    LeastLatency,
    /// The member with the lowest `load + in_flight + 10 × error_rate`, with
    /// `load` from `MeshDaemon::load()`; ties rotate.
    LeastLoad,
    /// Consistent hashing when the request has a key or session; otherwise
    /// the smooth weighted round-robin pick, unless a second member drawn at
    /// random has fewer deliveries in flight (power of two choices with the
    /// schedule as one choice): exact weights while load is even, away from
    /// busy members when it is not.
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

    /// Whether the roster must carry a Maglev table for this strategy.
    pub(crate) fn needs_maglev(self) -> bool {
        matches!(self, Strategy::ConsistentHash | Strategy::Adaptive)
    }

    /// Whether the roster must carry a weighted round-robin schedule.
    pub(crate) fn needs_schedule(self) -> bool {
        matches!(self, Strategy::WeightedRoundRobin | Strategy::Adaptive)
    }

    /// Whether the roster must carry an alias table.
    pub(crate) fn needs_alias(self) -> bool {
        matches!(self, Strategy::WeightedRandom)
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

/// The request's tag requirements, resolved against one roster.
#[derive(Debug)]
pub(crate) struct Filter<'c> {
    /// Tag bits a member must carry (see `Hot::tags`).
    mask: u64,
    /// Required tags past the roster's 64 numbered ones (rare), checked on
    /// the member itself.
    unnumbered: &'c [crate::context::Label],
}

impl<'c> Filter<'c> {
    /// `None` when a required tag is carried by no healthy member.
    #[inline]
    fn new(roster: &Roster, ctx: &'c RequestContext) -> Option<Filter<'c>> {
        let mut filter = Filter {
            mask: 0,
            unnumbered: &[],
        };
        for tag in ctx.tags() {
            match roster.tag_bit(tag.hash) {
                Ok(bit) => filter.mask |= bit,
                Err(true) => filter.unnumbered = ctx.tags(),
                Err(false) => return None,
            }
        }
        Some(filter)
    }
}

/// Whether `hot` may take the request right now: it carries the required
/// tags and its circuit admits traffic.
#[inline]
fn admits(roster: &Roster, hot: &Hot, filter: &Filter<'_>) -> bool {
    hot.tags & filter.mask == filter.mask
        && (filter.unnumbered.is_empty() || {
            let member = roster.member(hot.index);
            filter.unnumbered.iter().all(|t| member.has_tag(t.hash))
        })
        && hot.stats.routable()
}

/// Routes `ctx` on `roster`: the chosen member's origin hash, or why none.
///
/// One function per strategy, each compiled on its own so the common one
/// stays small; a context without zone or tags (the common case) takes a
/// path where the only admission check is the circuit.
///
/// The result is register-sized (`NoRoute` is one byte): a 32-byte
/// `Result<u64, GroupError>` goes back through memory, and reloading it
/// stalled `route_event` on store forwarding (BENCHMARKS.md, findings).
/// Callers convert at the public boundary.
#[inline(always)]
pub(crate) fn route(
    strategy: Strategy,
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Result<u64, NoRoute> {
    let picked = match strategy {
        Strategy::RoundRobin => route_rotation(roster, ctx, state),
        Strategy::Random => route_random(roster, ctx, state),
        Strategy::WeightedRoundRobin => route_weighted_rotation(roster, ctx, state),
        Strategy::WeightedRandom => route_weighted_random(roster, ctx, state),
        Strategy::LeastConnections => route_lowest(roster, ctx, state, least::connections),
        Strategy::WeightedLeastConnections => {
            route_lowest(roster, ctx, state, least::weighted_connections)
        }
        Strategy::PowerOfTwo => route_power_of_two(roster, ctx, state),
        Strategy::ConsistentHash => route_consistent(roster, ctx, state),
        Strategy::LeastLatency => route_lowest(roster, ctx, state, least::latency),
        Strategy::LeastLoad => route_lowest(roster, ctx, state, least::load_score),
        Strategy::Adaptive => route_adaptive(roster, ctx, state),
    };
    match picked {
        Some(origin_hash) => Ok(origin_hash),
        None if roster.is_closed() => Err(NoRoute::ShuttingDown),
        None => Err(NoRoute::NoHealthyMember),
    }
}

/// Why a route found no member; becomes a [`GroupError`](crate::GroupError).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoute {
    NoHealthyMember,
    ShuttingDown,
}

impl From<NoRoute> for crate::GroupError {
    #[inline]
    fn from(why: NoRoute) -> Self {
        match why {
            NoRoute::NoHealthyMember => crate::GroupError::NoHealthyMember,
            NoRoute::ShuttingDown => crate::GroupError::ShuttingDown,
        }
    }
}

/// Whether the context asks for nothing but a member.
#[inline(always)]
fn is_plain(ctx: &RequestContext) -> bool {
    ctx.zone().is_none() && ctx.tags().is_empty()
}

#[inline(always)]
fn circuit_admits(hot: &Hot) -> bool {
    hot.stats.routable()
}

// Inlined into the callers' match: round robin is the common strategy and
// its plain path is a handful of instructions.
#[inline]
fn route_rotation(roster: &Roster, ctx: &RequestContext, state: &mut PickState) -> Option<u64> {
    if is_plain(ctx) {
        return rotation::next(roster.hot(), &mut state.cursor, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, _, admit| {
        rotation::next(set, &mut state.cursor, admit)
    })
}

fn route_random(roster: &Roster, ctx: &RequestContext, state: &mut PickState) -> Option<u64> {
    if is_plain(ctx) {
        return random::uniform(roster.hot(), &mut state.rng, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, _, admit| {
        random::uniform(set, &mut state.rng, admit)
    })
}

fn route_weighted_rotation(
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<u64> {
    if is_plain(ctx) {
        return weighted::next(roster, None, &mut state.cursor, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |_, zone, admit| {
        weighted::next(roster, zone, &mut state.cursor, admit)
    })
}

fn route_weighted_random(
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
) -> Option<u64> {
    if is_plain(ctx) {
        return weighted::draw(roster, roster.hot(), None, &mut state.rng, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, zone, admit| {
        weighted::draw(roster, set, zone, &mut state.rng, admit)
    })
}

fn route_lowest<K: PartialOrd + Copy>(
    roster: &Roster,
    ctx: &RequestContext,
    state: &mut PickState,
    score: impl Fn(&Hot) -> K + Copy,
) -> Option<u64> {
    if is_plain(ctx) {
        return least::lowest(roster.hot(), &mut state.cursor, circuit_admits, score)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, _, admit| {
        least::lowest(set, &mut state.cursor, admit, score)
    })
}

fn route_power_of_two(roster: &Roster, ctx: &RequestContext, state: &mut PickState) -> Option<u64> {
    if is_plain(ctx) {
        return random::power_of_two(roster.hot(), &mut state.rng, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, _, admit| {
        random::power_of_two(set, &mut state.rng, admit)
    })
}

fn route_consistent(roster: &Roster, ctx: &RequestContext, state: &mut PickState) -> Option<u64> {
    let Some(key) = ctx.routing_key_hash() else {
        return route_rotation(roster, ctx, state);
    };
    if is_plain(ctx) {
        return maglev::keyed(roster, roster.hot(), None, key, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, zone, admit| {
        maglev::keyed(roster, set, zone, key, admit)
    })
}

fn route_adaptive(roster: &Roster, ctx: &RequestContext, state: &mut PickState) -> Option<u64> {
    if ctx.routing_key_hash().is_some() {
        return route_consistent(roster, ctx, state);
    }
    let PickState { cursor, rng } = state;
    if is_plain(ctx) {
        return adaptive::pick(roster, roster.hot(), None, cursor, rng, circuit_admits)
            .map(|h| h.origin_hash);
    }
    pick_filtered(roster, ctx, |set, zone, admit| {
        adaptive::pick(roster, set, zone, cursor, rng, admit)
    })
}

/// Applies the context's tag requirements and zone preference around `pick`:
/// first among the healthy members of the zone, then among all.
#[inline(never)]
fn pick_filtered<'r>(
    roster: &'r Roster,
    ctx: &RequestContext,
    mut pick: impl FnMut(&'r [Hot], Option<u8>, &dyn Fn(&Hot) -> bool) -> Option<&'r Hot>,
) -> Option<u64> {
    let filter = Filter::new(roster, ctx)?;
    let admit = |h: &Hot| admits(roster, h, &filter);
    if let Some(zone) = ctx.zone() {
        if let Some((z, local)) = roster.zone(zone.hash) {
            if let Some(hot) = pick(local, Some(z), &admit) {
                return Some(hot.origin_hash);
            }
        }
    }
    pick(roster.hot(), None, &admit).map(|h| h.origin_hash)
}
