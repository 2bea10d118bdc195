//! The roster: an immutable snapshot of one group, published by the writer
//! through `ArcSwap` and read by every route.
//!
//! It holds every replica by index (for [`MemberInfo`] and health) and the
//! strategy's [`Pool`] over the healthy ones, so a route reads and never
//! allocates. A roster is never changed after it is published; the next
//! change builds a new one.

use super::report::{GroupHealth, MemberInfo, MemberStats};
use crate::context::RequestContext;
use crate::daemon::Replica;
use crate::error::GroupError;
use crate::strategy::{self, Candidate, Locale, PickState, Pool, Strategy};
use crate::sync::Arc;

/// Why a route found no replica: register-sized, so the route path returns
/// it in registers (a 32-byte `Result<u64, GroupError>` goes back through
/// memory, and reloading it stalled `route_event` on store forwarding; see
/// BENCHMARKS.md). It becomes a [`GroupError`] at the public boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoute {
    NoHealthyMember,
    ShuttingDown,
    Removed,
}

impl From<NoRoute> for GroupError {
    #[inline]
    fn from(why: NoRoute) -> Self {
        match why {
            NoRoute::NoHealthyMember => GroupError::NoHealthyMember,
            NoRoute::ShuttingDown => GroupError::ShuttingDown,
            NoRoute::Removed => GroupError::Removed,
        }
    }
}

/// Whether routes may pick from a roster, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// The runtime shut down.
    Closed,
    /// The group was removed.
    Removed,
}

/// What the writer tells a new roster of each replica: whether routes may
/// pick it, and where it sits.
pub(crate) type Listed<'a> = (bool, &'a Locale);

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Roster {
    epoch: u64,
    term: u64,
    state: State,
    /// Every replica, by index (shared with the writer, which replaces the
    /// list on a change).
    replicas: Arc<[Arc<Replica>]>,
    /// Whether each replica (by index) is healthy.
    healthy: Box<[bool]>,
    pool: Pool,
}

impl Roster {
    /// The roster of `replicas` (by index) at `epoch`, `listed` saying of
    /// each whether it is healthy and where it sits.
    pub(crate) fn new(
        epoch: u64,
        term: u64,
        strategy: Strategy,
        replicas: Arc<[Arc<Replica>]>,
        listed: &[Listed<'_>],
    ) -> Self {
        debug_assert!(replicas
            .iter()
            .enumerate()
            .all(|(i, r)| r.index() as usize == i));
        let healthy: Vec<(Arc<Replica>, &Locale)> = replicas
            .iter()
            .zip(listed)
            .filter(|(_, (healthy, _))| *healthy)
            .map(|(r, (_, locale))| (Arc::clone(r), *locale))
            .collect();
        Roster {
            epoch,
            term,
            state: State::Open,
            pool: strategy.pool(&healthy, replicas.len() as u8),
            healthy: listed.iter().map(|(h, _)| *h).collect(),
            replicas,
        }
    }

    /// The roster of a runtime that has shut down: no replicas, and routes say so.
    pub(crate) fn closed(epoch: u64, term: u64) -> Self {
        Self::empty(epoch, term, State::Closed)
    }

    /// The last roster of a removed group: no replicas, and routes say so.
    pub(crate) fn removed(epoch: u64, term: u64) -> Self {
        Self::empty(epoch, term, State::Removed)
    }

    fn empty(epoch: u64, term: u64, state: State) -> Self {
        Roster {
            epoch,
            term,
            state,
            replicas: Arc::default(),
            healthy: Box::default(),
            pool: Pool::default(),
        }
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.state == State::Removed
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn term(&self) -> u64 {
        self.term
    }

    /// Picks a candidate for `ctx` with `strategy`.
    #[inline(always)]
    pub(crate) fn pick(
        &self,
        strategy: Strategy,
        ctx: &RequestContext,
        state: &mut PickState,
    ) -> Result<&Candidate, NoRoute> {
        match strategy::pick(strategy, &self.pool, ctx, state) {
            Some(candidate) => Ok(candidate),
            None => Err(self.no_route()),
        }
    }

    #[cold]
    fn no_route(&self) -> NoRoute {
        match self.state {
            State::Open => NoRoute::NoHealthyMember,
            State::Closed => NoRoute::ShuttingDown,
            State::Removed => NoRoute::Removed,
        }
    }

    /// Every replica, by index.
    pub(crate) fn members(&self) -> Vec<MemberInfo> {
        self.replicas
            .iter()
            .zip(self.healthy.iter())
            .map(|(r, &healthy)| MemberInfo {
                index: r.index(),
                origin_hash: r.origin_hash(),
                node_id: r.node_id(),
                entity_id_bytes: r.entity_id(),
                healthy,
            })
            .collect()
    }

    /// Every replica's live statistics, by index.
    pub(crate) fn stats(&self) -> Vec<MemberStats> {
        self.replicas
            .iter()
            .zip(self.healthy.iter())
            .map(|(r, &healthy)| MemberStats::of(r, healthy))
            .collect()
    }

    /// See [`ReplicaGroup::ejection_panics`](crate::ReplicaGroup::ejection_panics).
    pub(crate) fn ejection_panics(&self) -> u64 {
        self.replicas
            .first()
            .map_or(0, |r| r.settings().ejection_panics())
    }

    pub(crate) fn len(&self) -> u8 {
        self.replicas.len() as u8
    }

    pub(crate) fn healthy_count(&self) -> u8 {
        self.pool.len() as u8
    }

    pub(crate) fn health(&self) -> GroupHealth {
        let (total, healthy) = (self.len(), self.healthy_count());
        if healthy == total && total > 0 {
            GroupHealth::Healthy
        } else if healthy == 0 {
            GroupHealth::Dead
        } else {
            GroupHealth::Degraded { healthy, total }
        }
    }
}
