//! Router: a per-thread routing handle for the hottest paths.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;

use super::dispatch::{self, DispatchError};
use super::roster::{NoRoute, Roster};
use crate::context::RequestContext;
use crate::daemon::Event;
use crate::error::GroupError;
use crate::strategy::{fresh_seed, PickState, Strategy};
use crate::sync::{Arc, ArcSwap, Cache};

/// A routing handle for one thread, from [`ReplicaGroup::router`](crate::ReplicaGroup::router).
///
/// It caches the group's current roster (`arc_swap::Cache`: revalidated by
/// one pointer read per route, refreshed only when the writer published a new
/// one) and keeps its own rotation cursor and random generator, so a route
/// touches no shared mutable state. `Send`, not `Sync`: make one per thread.
///
/// A router keeps the roster it last saw alive until its next route or its drop.
pub struct Router {
    cache: Cache<Arc<ArcSwap<Roster>>, Arc<Roster>>,
    strategy: Strategy,
    state: PickState,
    _not_sync: PhantomData<Cell<()>>,
}

impl Router {
    pub(crate) fn new(roster: &Arc<ArcSwap<Roster>>, strategy: Strategy) -> Self {
        Router {
            cache: Cache::new(Arc::clone(roster)),
            strategy,
            state: PickState::new(fresh_seed()),
            _not_sync: PhantomData,
        }
    }

    /// Chooses a member for `ctx` and returns its origin hash; see
    /// [`ReplicaGroup::route_event`](crate::ReplicaGroup::route_event) for the rules.
    ///
    /// Always inlined, and small: the pick stays out of line and hands back
    /// two scalars, and the 32-byte `Result` is built in the caller's frame.
    /// Returned through memory from a call instead, it was copied with
    /// 16-byte loads spanning 8-byte stores, which the CPU cannot forward:
    /// a loop that kept each result (`black_box`) took twice as long.
    #[inline(always)]
    pub fn route(&mut self, ctx: &RequestContext) -> Result<u64, GroupError> {
        match self.pick_origin(ctx) {
            (origin, None) => Ok(origin),
            (_, Some(why)) => Err(why.into()),
        }
    }

    /// The chosen member's origin hash, or why there is none.
    #[inline]
    fn pick_origin(&mut self, ctx: &RequestContext) -> (u64, Option<NoRoute>) {
        let roster = self.cache.load();
        match roster.pick(self.strategy, ctx, &mut self.state) {
            Ok(candidate) => (candidate.origin_hash(), None),
            Err(why) => (0, Some(why)),
        }
    }

    /// Routes on the current snapshot and reports it: its epoch and members.
    #[cfg(replica_router_loom)]
    pub(crate) fn route_observed(
        &mut self,
        ctx: &RequestContext,
    ) -> (u64, Vec<crate::MemberInfo>, Result<u64, GroupError>) {
        let roster = self.cache.load();
        let routed = roster
            .pick(self.strategy, ctx, &mut self.state)
            .map(|c| c.origin_hash())
            .map_err(GroupError::from);
        (roster.epoch(), roster.members(), routed)
    }

    /// Routes and delivers `event`, re-routing when the chosen replica
    /// vanished in between; see [`ReplicaGroup::dispatch`](crate::ReplicaGroup::dispatch).
    pub fn dispatch(
        &mut self,
        ctx: &RequestContext,
        event: &Event,
    ) -> Result<Vec<Bytes>, DispatchError> {
        let Router {
            cache,
            strategy,
            state,
            ..
        } = self;
        dispatch::dispatch(|| {
            let candidate = cache.load().pick(*strategy, ctx, state)?;
            Ok(candidate.replica().process(event))
        })
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}
