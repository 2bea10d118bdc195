//! Load-balancing strategies: one short pick function per family, each reading
//! the immutable [`Pool`] of a roster and the replicas' live statistics.
//!
//! Each family owns the table it needs (the consistent-hash lookup, the
//! weighted schedule, the alias table), built over the candidates by
//! [`Pool::build`] and kept opaque to the roster, as pingora's
//! `BackendSelection::build` does.
//!
//! Every pick honours the same admission rule (see `admits`): the replica is
//! a candidate (healthy), its circuit admits traffic, and its node carries
//! every tag the request requires. A zone preference is applied on top: the
//! pick runs over the zone's candidates first, then over all of them.

mod adaptive;
mod candidates;
mod consistent;
mod floor;
mod least;
mod pick;
mod pool;
mod random;
mod rotation;
mod weighted;

use crate::daemon::Replica;
use crate::sync::{coarse_now, Arc};

use candidates::Candidates;
pub(crate) use candidates::{Candidate, Locale};
use consistent::SlotTable;
use floor::Floor;
pub(crate) use pick::pick;
pub(crate) use pool::Pool;
use pool::{Tables, Tier, Tuning};
pub(crate) use random::fresh_seed;
use random::Rng;

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
    /// Each router walks the healthy members in a fixed order (by zone, then
    /// index), one per route.
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
    /// Consistent hashing on the routing key, else the session, else round
    /// robin: a small slot table per roster (16 slots per replica), so a
    /// keyed route is one table read. Sticky, balanced and minimally
    /// disruptive: losing a replica moves only its keys, restoring it
    /// restores them, and growing moves only the new replica's share.
    ConsistentHash,
    /// The cheaper of two, by latency cost: the replica at the rotation
    /// cursor against the next one, the next winning only when clearly
    /// cheaper (by a third), where the cost is the latency estimate times
    /// (deliveries in flight + 1) (Finagle's and tower's cost, with the pair
    /// drawn by rotation). The estimate is peak-sensitive (a slower sample
    /// moves it half way, a faster one an eighth), fades with time
    /// (`DaemonHostConfig::latency_decay`, 10 s), and counts a failure as
    /// slow: equally fast replicas take turns, a replica slow once is tried
    /// again and regains its share once fast, and one failing fast repels
    /// traffic. A replica not measured yet is tried as soon as it comes up.
    /// When both of the pair cost more than twice the lowest cost the router
    /// has seen lately (a slow replica next to a failing one), up to 8 more
    /// are looked at, and one costing under half as much wins.
    LeastLatency,
    /// The member with the lowest `load + in_flight + 10 × error_rate`, with
    /// `load` from `MeshDaemon::load()`; ties rotate.
    LeastLoad,
    /// Consistent hashing when the request has a key or session; otherwise
    /// the smooth weighted round-robin pick, unless a second replica drawn at
    /// random is clearly cheaper by `LeastLatency`'s cost (power of two
    /// choices with the schedule as one choice): node weights while replicas
    /// are alike, away from slow, busy or failing ones when they are not.
    /// Both bad: it looks further, as `LeastLatency` does.
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

    /// Whether routes read the replicas' latency estimates, so that every
    /// delivery must be timed (others are timed on a sample).
    pub(crate) fn routes_on_latency(self) -> bool {
        matches!(self, Strategy::LeastLatency | Strategy::Adaptive)
    }

    /// Whether routes read `MeshDaemon::load()`.
    pub(crate) fn routes_on_load(self) -> bool {
        matches!(self, Strategy::LeastLoad)
    }

    /// The pool this strategy picks from over `healthy` (ascending by
    /// index) in a group of `group_size` replicas: the candidates and the
    /// table the strategy needs, per tier.
    pub(crate) fn pool(self, healthy: &[(Arc<Replica>, &Locale)], group_size: u8) -> Pool {
        if healthy.iter().all(|(_, l)| l.weight == 0) {
            // Every weight 0: none is drained in favour of another, and the
            // weighted strategies count them as equal.
            return Pool {
                weighted: self.tier(healthy, group_size),
                drained: None,
            };
        }
        let (weighted, drained): (Vec<_>, Vec<_>) =
            healthy.iter().cloned().partition(|(_, l)| l.weight > 0);
        Pool {
            weighted: self.tier(&weighted, group_size),
            drained: (!drained.is_empty()).then(|| Box::new(self.tier(&drained, group_size))),
        }
    }

    fn tier(self, healthy: &[(Arc<Replica>, &Locale)], group_size: u8) -> Tier {
        let candidates = Candidates::build(healthy);
        let all = candidates.all();
        let tables = Tables {
            slots: match self {
                Strategy::ConsistentHash | Strategy::Adaptive => SlotTable::build(all, group_size),
                _ => None,
            },
            schedule: match self {
                Strategy::WeightedRoundRobin | Strategy::Adaptive => weighted::schedule(all),
                _ => Box::default(),
            },
            alias: match self {
                Strategy::WeightedRandom => weighted::AliasTable::build(all),
                _ => None,
            },
        };
        let tuning = healthy
            .first()
            .map_or_else(Tuning::default, |(replica, _)| {
                let settings = replica.settings();
                let config = &settings.config;
                let ramps = matches!(
                    self,
                    Strategy::RoundRobin
                        | Strategy::WeightedRoundRobin
                        | Strategy::LeastConnections
                        | Strategy::PowerOfTwo
                );
                let ramp_ms = u32::try_from(config.slow_start.as_millis()).unwrap_or(u32::MAX);
                let now = coarse_now();
                let ramping = ramps
                    && ramp_ms > 0
                    && healthy
                        .iter()
                        .any(|(r, _)| now.wrapping_sub(r.healthy_since_ms()) < ramp_ms);
                Tuning {
                    decay: settings.decay,
                    ramp_ms: ramping.then_some(ramp_ms),
                    balance: config.hash_balance_factor.map(|f| f as f32),
                }
            });
        Tier {
            candidates,
            tables,
            tuning,
        }
    }
}

/// A router's own mutable state: its rotation cursor, random generator and
/// latency cost floor.
#[derive(Debug, Clone)]
pub(crate) struct PickState {
    cursor: usize,
    rng: Rng,
    floor: Floor,
}

impl PickState {
    /// State seeded from `seed`: routers with different seeds start their
    /// rotation at different places, so many routers spread at once.
    pub(crate) fn new(seed: u64) -> Self {
        let rng = Rng::new(seed);
        let cursor = rng.peek() as usize;
        PickState {
            cursor,
            rng,
            floor: Floor::new(),
        }
    }
}
