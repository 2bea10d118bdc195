//! Baselines the route benchmarks compare against, run in the same process.
//!
//! All three route with the same [`pick`] over the same [`BaseRoster`]; they
//! differ only in how a route reaches the roster, which is what the
//! comparison is about:
//!
//! - [`MutexGroup`]: the design this crate replaces. Group state (roster and
//!   rotation / random state) behind a `parking_lot::Mutex`; every route
//!   locks it and picks under the lock.
//! - [`RwLockGroup`]: `parking_lot::RwLock<Arc<BaseRoster>>`; a route takes
//!   the read lock and picks under the guard (cheaper than cloning the `Arc`
//!   out, so the strongest form of this design), with per-thread rotation and
//!   random state in a [`BaseState`] handle.
//! - [`ArcSwapGroup`]: `ArcSwap<BaseRoster>` with `load_full` (an `Arc`
//!   clone) per route, and per-thread state.
//!
//! The picks mirror our strategies with textbook structures: rotation over
//! the members skipping unhealthy ones, xorshift draws, a prefix-sum binary
//! search for weighted random, a scan for the exact-minimum strategies, and
//! for consistent hashing a Ketama-style ring (160 points per member, sorted,
//! binary search), built once per roster. [`MutexGroup::route_rebuilding`] is
//! the replaced design's consistent hashing, which rebuilt and sorted its
//! ring on every call.
//!
//! [`SeedRuntime`] is the replaced design's route + deliver, for the dispatch
//! benches: the group's mutex (a [`MutexGroup`] route), the registry (origin
//! hash → `Arc<Mutex<Box<dyn MeshDaemon>>>`, behind one `RwLock` or in a
//! `DashMap`), the daemon's mutex, and `process`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use replica_router::{DaemonError, Event, GroupError, MeshDaemon, RequestContext, Strategy};

/// Virtual points per member on the consistent-hash ring (Ketama's count).
const RING_POINTS: u64 = 160;

/// Live statistics of one member, as the load-aware picks read them.
#[derive(Default)]
pub(crate) struct BaseStats {
    in_flight: AtomicU64,
    latency_ns: AtomicU64,
    load: AtomicU64,
    errors: AtomicU64,
    /// Non-zero while the member's circuit is open.
    circuit: AtomicU64,
}

impl BaseStats {
    #[inline]
    fn routable(&self) -> bool {
        self.circuit.load(Ordering::Relaxed) == 0
    }
}

#[derive(Clone)]
struct BaseMember {
    origin_hash: u64,
    healthy: bool,
    weight: u32,
    stats: Arc<CachePadded<BaseStats>>,
}

/// An immutable snapshot of a group: members and the tables the picks need.
#[derive(Clone)]
pub(crate) struct BaseRoster {
    members: Vec<BaseMember>,
    /// Positions in `members` of the healthy ones.
    healthy: Vec<u32>,
    /// Smooth weighted round-robin cycle (positions in `members`).
    schedule: Vec<u32>,
    /// Prefix sums of the healthy members' weights.
    cumulative: Vec<u64>,
    /// `(point, position in members)`, sorted by point; empty unless the
    /// strategy hashes.
    ring: Vec<(u64, u32)>,
    strategy: Strategy,
}

/// A router's own state: rotation cursor and random generator.
pub(crate) struct BaseState {
    cursor: usize,
    rng: u64,
}

impl BaseState {
    pub(crate) fn new() -> Self {
        static SEED: AtomicU64 = AtomicU64::new(0x5eed);
        let s = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        BaseState {
            cursor: (s >> 7) as usize,
            rng: mix64(s) | 1,
        }
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        ((u128::from(x.wrapping_mul(0x2545_f491_4f6c_dd1d)) * n as u128) >> 64) as usize
    }
}

#[inline]
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl BaseRoster {
    /// A roster over `origin_hashes` (all healthy, weight 100).
    pub(crate) fn new(origin_hashes: impl IntoIterator<Item = u64>, strategy: Strategy) -> Self {
        let members = origin_hashes
            .into_iter()
            .map(|origin_hash| BaseMember {
                origin_hash,
                healthy: true,
                weight: 100,
                stats: Arc::default(),
            })
            .collect();
        Self::build(members, strategy)
    }

    fn build(members: Vec<BaseMember>, strategy: Strategy) -> Self {
        let healthy: Vec<u32> = (0..members.len() as u32)
            .filter(|&i| members[i as usize].healthy)
            .collect();
        let mut total = 0;
        let cumulative = healthy
            .iter()
            .map(|&i| {
                total += u64::from(members[i as usize].weight);
                total
            })
            .collect();
        let schedule = smooth_schedule(&members, &healthy);
        let ring = if matches!(strategy, Strategy::ConsistentHash | Strategy::Adaptive) {
            ring(&members, &healthy)
        } else {
            Vec::new()
        };
        BaseRoster {
            members,
            healthy,
            schedule,
            cumulative,
            ring,
            strategy,
        }
    }

    /// A copy with member `index` marked healthy or not, tables rebuilt.
    pub(crate) fn with_health(&self, index: usize, healthy: bool) -> Self {
        let mut members = self.members.clone();
        members[index].healthy = healthy;
        Self::build(members, self.strategy)
    }
}

fn ring(members: &[BaseMember], healthy: &[u32]) -> Vec<(u64, u32)> {
    let mut ring: Vec<(u64, u32)> = healthy
        .iter()
        .flat_map(|&i| {
            let h = members[i as usize].origin_hash;
            (0..RING_POINTS).map(move |p| (mix64(h ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15)), i))
        })
        .collect();
    ring.sort_unstable();
    ring
}

/// nginx's smooth weighted round robin, unrolled into one cycle.
fn smooth_schedule(members: &[BaseMember], healthy: &[u32]) -> Vec<u32> {
    let gcd = healthy
        .iter()
        .map(|&i| u64::from(members[i as usize].weight))
        .fold(0, gcd);
    if gcd == 0 {
        return healthy.to_vec();
    }
    let weights: Vec<i64> = healthy
        .iter()
        .map(|&i| (u64::from(members[i as usize].weight) / gcd) as i64)
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..current.len()).max_by_key(|&j| current[j]).unwrap();
            current[best] -= total;
            healthy[best]
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Chooses a member for a request with routing-key hash `key`.
#[inline]
pub(crate) fn pick(roster: &BaseRoster, key: Option<u64>, state: &mut BaseState) -> Option<u64> {
    let members = &roster.members;
    match (roster.strategy, key) {
        (Strategy::ConsistentHash | Strategy::Adaptive, Some(key)) => ring_lookup(roster, key),
        (Strategy::Random, _) => {
            let h = &roster.healthy;
            if h.is_empty() {
                return None;
            }
            let start = state.below(h.len());
            (0..h.len())
                .map(|k| &members[h[(start + k) % h.len()] as usize])
                .find(|m| m.stats.routable())
                .map(|m| m.origin_hash)
        }
        (Strategy::WeightedRoundRobin, _) => {
            let s = &roster.schedule;
            (0..s.len()).find_map(|_| {
                let i = state.cursor % s.len();
                state.cursor = state.cursor.wrapping_add(1);
                let m = &members[s[i] as usize];
                m.stats.routable().then_some(m.origin_hash)
            })
        }
        (Strategy::WeightedRandom, _) => {
            let total = *roster.cumulative.last()?;
            let draw = state.below(total as usize) as u64;
            let j = roster.cumulative.partition_point(|&c| c <= draw);
            let m = &members[roster.healthy[j] as usize];
            m.stats.routable().then_some(m.origin_hash)
        }
        (Strategy::LeastConnections, _) => lowest(roster, state, |s| {
            s.in_flight.load(Ordering::Relaxed) as f64
        }),
        (Strategy::WeightedLeastConnections, _) => lowest(roster, state, |s| {
            (s.in_flight.load(Ordering::Relaxed) + 1) as f64 / 100.0
        }),
        (Strategy::LeastLatency, _) => lowest(roster, state, |s| {
            s.latency_ns.load(Ordering::Relaxed) as f64
        }),
        (Strategy::LeastLoad, _) => lowest(roster, state, |s| {
            f64::from_bits(s.load.load(Ordering::Relaxed))
                + s.in_flight.load(Ordering::Relaxed) as f64
                + 10.0 * s.errors.load(Ordering::Relaxed) as f64
        }),
        (Strategy::PowerOfTwo | Strategy::Adaptive, _) => {
            let h = &roster.healthy;
            match h.len() {
                0 => None,
                1 => Some(members[h[0] as usize].origin_hash),
                n => {
                    let a = state.below(n);
                    let mut b = state.below(n - 1);
                    if b >= a {
                        b += 1;
                    }
                    let (a, b) = (&members[h[a] as usize], &members[h[b] as usize]);
                    let busy = |m: &BaseMember| m.stats.in_flight.load(Ordering::Relaxed);
                    let m = if busy(b) < busy(a) && b.stats.routable() {
                        b
                    } else {
                        a
                    };
                    Some(m.origin_hash)
                }
            }
        }
        // RoundRobin, and ConsistentHash without a key: the replaced
        // design's scan for the next healthy member.
        _ => {
            let n = members.len();
            (0..n).find_map(|_| {
                let i = state.cursor % n;
                state.cursor = state.cursor.wrapping_add(1);
                let m = &members[i];
                (m.healthy && m.stats.routable()).then_some(m.origin_hash)
            })
        }
    }
}

#[inline]
fn ring_lookup(roster: &BaseRoster, key: u64) -> Option<u64> {
    let ring = &roster.ring;
    if ring.is_empty() {
        return None;
    }
    let point = mix64(key);
    let j = ring.partition_point(|&(p, _)| p < point);
    let (_, i) = ring[if j == ring.len() { 0 } else { j }];
    Some(roster.members[i as usize].origin_hash)
}

/// The healthy member with the lowest score, scanning from the cursor so
/// tied members take turns.
#[inline]
fn lowest(
    roster: &BaseRoster,
    state: &mut BaseState,
    score: impl Fn(&BaseStats) -> f64,
) -> Option<u64> {
    let h = &roster.healthy;
    let n = h.len();
    if n == 0 {
        return None;
    }
    let start = state.cursor % n;
    let mut best: Option<(usize, f64)> = None;
    for k in 0..n {
        let j = if start + k < n {
            start + k
        } else {
            start + k - n
        };
        let m = &roster.members[h[j] as usize];
        if !m.stats.routable() {
            continue;
        }
        let s = score(&m.stats);
        if best.is_none_or(|(_, b)| s < b) {
            best = Some((j, s));
        }
    }
    let (j, _) = best?;
    state.cursor = j + 1;
    Some(roster.members[h[j] as usize].origin_hash)
}

/// A baseline the benches drive: routes from any thread through a
/// per-thread handle, and applies health changes from a writer thread.
pub(crate) trait Baseline: Send + Sync {
    /// Per-thread routing state.
    type Handle;
    fn handle(&self) -> Self::Handle;
    fn route(&self, handle: &mut Self::Handle, key: Option<u64>) -> Option<u64>;
    /// Publishes a roster with member `index` healthy or not (built before
    /// the lock is taken, so the lock is held only to swap it in).
    fn set_healthy(&self, index: usize, healthy: bool);
}

/// The replaced design: group state behind an uncontended
/// `parking_lot::Mutex`, routing done under the lock.
pub(crate) struct MutexGroup {
    state: Mutex<MutexState>,
}

struct MutexState {
    roster: Arc<BaseRoster>,
    pick: BaseState,
}

impl MutexGroup {
    pub(crate) fn new(roster: BaseRoster) -> Self {
        MutexGroup {
            state: Mutex::new(MutexState {
                roster: Arc::new(roster),
                pick: BaseState::new(),
            }),
        }
    }

    /// Routes under the lock.
    #[inline]
    pub(crate) fn route(&self, key: Option<u64>) -> Option<u64> {
        let mut s = self.state.lock();
        let MutexState { roster, pick: st } = &mut *s;
        pick(roster, key, st)
    }

    /// [`MutexGroup::route`] with the seed's signature, the one a user's
    /// loop calls: `Result<u64, GroupError>`.
    #[inline]
    pub(crate) fn route_event(&self, key: Option<u64>) -> Result<u64, GroupError> {
        self.route(key).ok_or(GroupError::NoHealthyMember)
    }

    /// The replaced design's consistent hashing: the ring rebuilt and sorted
    /// under the lock on every call.
    #[inline(never)]
    pub(crate) fn route_rebuilding(&self, key: u64) -> Option<u64> {
        let s = self.state.lock();
        let ring = ring(&s.roster.members, &s.roster.healthy);
        let point = mix64(key);
        let j = ring.partition_point(|&(p, _)| p < point);
        let (_, i) = *ring.get(j).or(ring.first())?;
        Some(s.roster.members[i as usize].origin_hash)
    }
}

impl Baseline for MutexGroup {
    type Handle = ();
    fn handle(&self) {}
    #[inline]
    fn route(&self, _: &mut (), key: Option<u64>) -> Option<u64> {
        MutexGroup::route(self, key)
    }
    fn set_healthy(&self, index: usize, healthy: bool) {
        let current = Arc::clone(&self.state.lock().roster);
        let next = Arc::new(current.with_health(index, healthy));
        let old = std::mem::replace(&mut self.state.lock().roster, next);
        drop(old);
    }
}

/// `RwLock<Arc<roster>>`: read lock per route, pick under the guard.
pub(crate) struct RwLockGroup {
    roster: RwLock<Arc<BaseRoster>>,
}

impl RwLockGroup {
    pub(crate) fn new(roster: BaseRoster) -> Self {
        RwLockGroup {
            roster: RwLock::new(Arc::new(roster)),
        }
    }
}

impl Baseline for RwLockGroup {
    type Handle = BaseState;
    fn handle(&self) -> BaseState {
        BaseState::new()
    }
    #[inline]
    fn route(&self, state: &mut BaseState, key: Option<u64>) -> Option<u64> {
        let roster = self.roster.read();
        pick(&roster, key, state)
    }
    fn set_healthy(&self, index: usize, healthy: bool) {
        let current = Arc::clone(&self.roster.read());
        let next = Arc::new(current.with_health(index, healthy));
        let old = std::mem::replace(&mut *self.roster.write(), next);
        drop(old);
    }
}

/// `ArcSwap<roster>` with `load_full` per route.
pub(crate) struct ArcSwapGroup {
    roster: ArcSwap<BaseRoster>,
}

impl ArcSwapGroup {
    pub(crate) fn new(roster: BaseRoster) -> Self {
        ArcSwapGroup {
            roster: ArcSwap::from_pointee(roster),
        }
    }
}

impl Baseline for ArcSwapGroup {
    type Handle = BaseState;
    fn handle(&self) -> BaseState {
        BaseState::new()
    }
    #[inline]
    fn route(&self, state: &mut BaseState, key: Option<u64>) -> Option<u64> {
        let roster = self.roster.load_full();
        pick(&roster, key, state)
    }
    fn set_healthy(&self, index: usize, healthy: bool) {
        let next = self.roster.load().with_health(index, healthy);
        self.roster.store(Arc::new(next));
    }
}

/// A daemon as the replaced design's registry holds it.
pub(crate) type SeedDaemon = Arc<Mutex<Box<dyn MeshDaemon>>>;

/// The replaced design's registry: origin hash → daemon. A delivery clones
/// the daemon's `Arc` out and lets go of the registry before it processes.
pub(crate) trait SeedRegistry: Default + Send + Sync {
    fn insert(&self, origin_hash: u64, daemon: SeedDaemon);
    fn get(&self, origin_hash: u64) -> Option<SeedDaemon>;
}

/// One `HashMap` (std's hasher) behind a `parking_lot::RwLock`.
impl SeedRegistry for RwLock<HashMap<u64, SeedDaemon>> {
    fn insert(&self, origin_hash: u64, daemon: SeedDaemon) {
        self.write().insert(origin_hash, daemon);
    }
    #[inline]
    fn get(&self, origin_hash: u64) -> Option<SeedDaemon> {
        self.read().get(&origin_hash).cloned()
    }
}

/// A `DashMap` (sharded `RwLock`s, std's hasher).
impl SeedRegistry for DashMap<u64, SeedDaemon> {
    fn insert(&self, origin_hash: u64, daemon: SeedDaemon) {
        DashMap::insert(self, origin_hash, daemon);
    }
    #[inline]
    fn get(&self, origin_hash: u64) -> Option<SeedDaemon> {
        DashMap::get(self, &origin_hash).map(|d| Arc::clone(d.value()))
    }
}

/// Why the replaced design's dispatch returned no outputs.
#[derive(Debug)]
pub(crate) enum SeedError {
    Route(GroupError),
    UnknownOrigin(u64),
    Daemon(DaemonError),
}

/// The replaced design's route + deliver over registry `R`.
pub(crate) struct SeedRuntime<R> {
    /// The group: state behind its mutex, routed under the lock.
    pub(crate) group: MutexGroup,
    registry: R,
}

impl<R: SeedRegistry> SeedRuntime<R> {
    /// A group over `origin_hashes` with `strategy`, each member's daemon
    /// made by `daemon` and registered.
    pub(crate) fn new(
        origin_hashes: &[u64],
        strategy: Strategy,
        daemon: impl Fn() -> Box<dyn MeshDaemon>,
    ) -> Self {
        let registry = R::default();
        for &origin_hash in origin_hashes {
            registry.insert(origin_hash, Arc::new(Mutex::new(daemon())));
        }
        SeedRuntime {
            group: MutexGroup::new(BaseRoster::new(origin_hashes.iter().copied(), strategy)),
            registry,
        }
    }

    /// Routes under the group's lock, finds the daemon in the registry,
    /// locks it and processes `event`.
    #[inline]
    pub(crate) fn dispatch(
        &self,
        ctx: &RequestContext,
        event: &Event,
    ) -> Result<Vec<Bytes>, SeedError> {
        let origin_hash = self
            .group
            .route_event(ctx.routing_key_hash())
            .map_err(SeedError::Route)?;
        let daemon = self
            .registry
            .get(origin_hash)
            .ok_or(SeedError::UnknownOrigin(origin_hash))?;
        let mut daemon = daemon.lock();
        daemon.process(event).map_err(SeedError::Daemon)
    }
}
