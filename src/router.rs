//! Router: a per-thread routing handle for the hottest paths.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;

use crate::context::RequestContext;
use crate::daemon::Event;
use crate::dispatch::{self, DispatchError};
use crate::error::GroupError;
use crate::roster::Roster;
use crate::runtime::DaemonRuntime;
use crate::strategy::{self, PickState, Strategy};
use crate::sync::{Arc, CachedReader, Publisher};

/// A routing handle for one thread, from [`ReplicaGroup::router`](crate::ReplicaGroup::router).
///
/// It caches the group's current roster (`arc_swap::Cache`: revalidated by
/// one pointer read per route, refreshed only when the writer published a new
/// one) and keeps its own rotation cursor and random generator, so a route
/// touches no shared mutable state. `Send`, not `Sync`: make one per thread.
///
/// A router keeps the roster it last saw alive until its next route or its drop.
pub struct Router {
    cache: CachedReader<Roster>,
    runtime: DaemonRuntime,
    strategy: Strategy,
    state: PickState,
    _not_sync: PhantomData<Cell<()>>,
}

impl Router {
    pub(crate) fn new(
        roster: &Arc<Publisher<Roster>>,
        strategy: Strategy,
        runtime: DaemonRuntime,
    ) -> Self {
        Router {
            cache: CachedReader::new(roster),
            runtime,
            strategy,
            state: PickState::new(),
            _not_sync: PhantomData,
        }
    }

    /// Chooses a member for `ctx` and returns its origin hash; see
    /// [`ReplicaGroup::route_event`](crate::ReplicaGroup::route_event) for the rules.
    #[inline]
    pub fn route(&mut self, ctx: &RequestContext) -> Result<u64, GroupError> {
        let roster = self.cache.load();
        strategy::route(self.strategy, roster, ctx, &mut self.state).map_err(GroupError::from)
    }

    /// Routes on the current snapshot and reports it: its epoch and members.
    #[cfg(replica_router_loom)]
    pub(crate) fn route_observed(
        &mut self,
        ctx: &RequestContext,
    ) -> (u64, Vec<crate::MemberInfo>, Result<u64, GroupError>) {
        let roster = self.cache.load();
        let members = roster.members().iter().map(|m| m.info()).collect();
        let routed =
            strategy::route(self.strategy, roster, ctx, &mut self.state).map_err(GroupError::from);
        (roster.epoch(), members, routed)
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
            runtime,
            strategy,
            state,
            ..
        } = self;
        dispatch::dispatch(runtime, event, || {
            strategy::route(*strategy, cache.load(), ctx, state).map_err(GroupError::from)
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
