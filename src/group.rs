//! ReplicaGroup: the handle users route, scale and fail over with.

use std::fmt;

use bytes::Bytes;

use crate::config::ReplicaGroupConfig;
use crate::context::RequestContext;
use crate::control::{Command, Engine, GroupHandle, GroupRef, Phase, Reply};
use crate::daemon::Event;
use crate::error::GroupError;
use crate::route::{
    cache, dispatch, DispatchError, GroupHealth, MemberInfo, MemberStats, NoRoute, Roster, Router,
};
use crate::runtime::DaemonRuntime;
use crate::strategy::Strategy;
use crate::sync::atomic::Ordering;
use crate::sync::{process_counter, Arc, ArcSwap};

/// A replica group: N interchangeable replicas of one daemon kind, each with
/// a deterministic identity, on distinct nodes.
///
/// Reads (`route_event`, `replicas`, `health`, …) are lock-free loads of the
/// current roster. Changes (`scale_to`, `on_node_failure`, …) are applied by
/// the runtime's writer thread; each call returns after the new roster is
/// published. `Send + Sync`: share it in an `Arc`.
pub struct ReplicaGroup {
    engine: Arc<Engine>,
    group: GroupRef,
    /// Process-unique, never 0: tags this group in the per-thread route cache.
    uid: u64,
    kind: Arc<str>,
    strategy: Strategy,
    roster: Arc<ArcSwap<Roster>>,
}

impl fmt::Debug for ReplicaGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roster = self.roster.load();
        f.debug_struct("ReplicaGroup")
            .field("group_id", &format_args!("{:#010x}", self.group.group_id))
            .field("kind", &self.kind)
            .field("strategy", &self.strategy)
            .field("epoch", &roster.epoch())
            .field("health", &roster.health())
            .finish_non_exhaustive()
    }
}

impl ReplicaGroup {
    /// Spawns a group of `config.replica_count` replicas of `kind`, placed on
    /// distinct nodes. All or nothing: on error nothing is registered.
    ///
    /// Errors: `NotReady` before [`DaemonRuntime::start`], `InvalidConfig` for
    /// zero replicas, an unavailable strategy or a seed already in use,
    /// `FactoryNotFound`, `FactoryFailed` when the factory panics,
    /// `PlacementFailed` when there are not enough eligible nodes, and
    /// `ShuttingDown`.
    pub fn spawn(
        runtime: &DaemonRuntime,
        kind: &str,
        config: ReplicaGroupConfig,
    ) -> Result<ReplicaGroup, GroupError> {
        let engine = runtime.engine();
        match engine.phase() {
            Phase::Registering => return Err(GroupError::NotReady),
            Phase::ShuttingDown => return Err(GroupError::ShuttingDown),
            // A stopped writer answers the call below with its reason.
            Phase::Ready | Phase::Stopped => {}
        }
        let handle = engine.call(|reply| Command::Spawn(kind.into(), config, reply))??;
        Ok(ReplicaGroup::new(engine, handle))
    }

    fn new(engine: &Arc<Engine>, handle: GroupHandle) -> Self {
        process_counter!(UIDS = 1);
        ReplicaGroup {
            engine: Arc::clone(engine),
            group: handle.group,
            uid: UIDS.fetch_add(1, Ordering::Relaxed),
            kind: handle.kind,
            strategy: handle.strategy,
            roster: handle.roster,
        }
    }

    /// The daemon kind, pinned at spawn.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The group id: the first 4 bytes (LE) of `blake3::hash(seed)`.
    pub fn group_id(&self) -> u32 {
        self.group.group_id
    }

    /// The group's strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Chooses a healthy member for `ctx` and returns its origin hash; deliver
    /// the event with [`DaemonRuntime::deliver`].
    ///
    /// Lock-free: it reads this thread's cached snapshot of the roster
    /// (revalidated by one pointer read) and keeps per-thread rotation state.
    /// Never returns a member removed, or on a failed node, by a call that
    /// has returned. `NoHealthyMember` when no member admits the request,
    /// `ShuttingDown` after shutdown.
    #[inline]
    pub fn route_event(&self, ctx: &RequestContext) -> Result<u64, GroupError> {
        // The pick leaves the per-thread cache in two scalars, not in one
        // 16-byte result: `LocalKey::try_with` may stay out of line, and a
        // result it returns through memory was copied with a 16-byte load
        // spanning two 8-byte stores, which the CPU cannot forward (a stall
        // that made this route three times slower in a user's binary).
        let (mut origin, mut why) = (0u64, None);
        cache::with_roster(self.uid, &self.roster, |roster, state| {
            match roster.pick(self.strategy, ctx, state) {
                Ok(candidate) => origin = candidate.origin_hash(),
                Err(no_route) => why = Some(no_route),
            }
        });
        match why {
            None => Ok(origin),
            Some(no_route) => Err(no_route.into()),
        }
    }

    /// A per-thread routing handle, for the hottest paths.
    pub fn router(&self) -> Router {
        Router::new(&self.roster, self.strategy)
    }

    /// Routes `event`, delivers it, and re-routes when the chosen replica
    /// vanished in between (removed by a scale-down, or its circuit opened),
    /// up to [`MAX_DISPATCH_ATTEMPTS`](crate::MAX_DISPATCH_ATTEMPTS) routes.
    ///
    /// Nothing is lost: the event is either processed exactly once by a live
    /// member (`Ok` with its outputs, or [`DispatchError::Failed`] when the
    /// daemon failed it) or returned unprocessed with the reason.
    ///
    /// ```
    /// # use replica_router::*;
    /// # struct Echo;
    /// # impl MeshDaemon for Echo {
    /// #     fn name(&self) -> &str { "echo" }
    /// #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![e.payload().clone()]) }
    /// # }
    /// let runtime = DaemonRuntime::new((1..=3).map(NodeInfo::new));
    /// runtime.register_factory("echo", || Box::new(Echo)).unwrap();
    /// runtime.start().unwrap();
    /// let group = ReplicaGroup::spawn(&runtime, "echo", ReplicaGroupConfig {
    ///     replica_count: 2, group_seed: [1; 32],
    ///     lb_strategy: Strategy::RoundRobin, host_config: DaemonHostConfig::default(),
    /// }).unwrap();
    /// let outputs = group.dispatch(&RequestContext::new(), &Event::new("hi")).unwrap();
    /// assert_eq!(&outputs[0][..], b"hi");
    /// ```
    pub fn dispatch(
        &self,
        ctx: &RequestContext,
        event: &Event,
    ) -> Result<Vec<Bytes>, DispatchError> {
        dispatch::dispatch(|| {
            // The replica is taken out of the per-thread cache before it
            // processes, so the daemon may route on this thread itself. It
            // leaves the cache in two pointer-sized values, as `route_event`'s
            // pick does.
            let (mut replica, mut why) = (None, NoRoute::NoHealthyMember);
            cache::with_roster(self.uid, &self.roster, |roster, state| {
                match roster.pick(self.strategy, ctx, state) {
                    Ok(candidate) => replica = Some(Arc::clone(candidate.replica())),
                    Err(no_route) => why = no_route,
                }
            });
            match replica {
                Some(replica) => Ok(replica.process(event)),
                None => Err(why),
            }
        })
    }

    /// Grows or shrinks to `n` replicas. Growth places each new replica on a
    /// node holding no member of the group; shrinking removes the highest
    /// indices first and unregisters them. Members stuck on failed nodes are
    /// re-placed on the way when a node is free. All or nothing.
    pub fn scale_to(&self, n: u8) -> Result<(), GroupError> {
        self.call(|reply| Command::Scale(self.group, n, reply))
    }

    /// Tells the group that `node_id` failed: its members there are marked
    /// unhealthy and re-placed on other nodes with the same identity. Returns
    /// the re-placed indices (empty when the node hosts no member).
    pub fn on_node_failure(&self, node_id: u64) -> Result<Vec<u8>, GroupError> {
        self.call(|reply| Command::GroupNodeFailure(self.group, node_id, reply))
    }

    /// Removes the group: one writer change that publishes a last, empty
    /// roster, unregisters every replica (its daemon is dropped) and frees
    /// the seed, so spawning it again gives the same identities. Once it
    /// returns, every route (`route_event`, every [`Router`], `dispatch`)
    /// and every later change on any handle of the group is
    /// [`GroupError::Removed`], deliveries to its origin hashes are
    /// [`DeliverError::UnknownOrigin`](crate::DeliverError::UnknownOrigin),
    /// and node failures no longer touch it. Removing twice is `Removed`.
    ///
    /// ```
    /// # use replica_router::*;
    /// # struct Echo;
    /// # impl MeshDaemon for Echo {
    /// #     fn name(&self) -> &str { "echo" }
    /// #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![]) }
    /// # }
    /// let runtime = DaemonRuntime::new((1..=3).map(NodeInfo::new));
    /// runtime.register_factory("echo", || Box::new(Echo)).unwrap();
    /// runtime.start().unwrap();
    /// let config = || ReplicaGroupConfig {
    ///     replica_count: 2, group_seed: [3; 32],
    ///     lb_strategy: Strategy::RoundRobin, host_config: DaemonHostConfig::default(),
    /// };
    /// let group = ReplicaGroup::spawn(&runtime, "echo", config()).unwrap();
    /// group.remove().unwrap();
    /// assert_eq!(group.route_event(&RequestContext::new()), Err(GroupError::Removed));
    /// assert_eq!(group.remove(), Err(GroupError::Removed));
    /// // The seed is free again: the same identities come back.
    /// let again = ReplicaGroup::spawn(&runtime, "echo", config()).unwrap();
    /// assert_eq!(again.group_id(), group.group_id());
    /// ```
    pub fn remove(&self) -> Result<(), GroupError> {
        self.call(|reply| Command::Remove(self.group, reply))
    }

    /// Every replica's live statistics, ordered by index: in flight,
    /// processed, errors, latency estimate and circuit state, read from the
    /// current roster without locks. For dashboards; the `metrics` feature
    /// exports the same figures.
    pub fn stats(&self) -> Vec<MemberStats> {
        self.roster.load().stats()
    }

    /// How many times the group's open circuits went past
    /// [`DaemonHostConfig::max_ejection_percent`](crate::DaemonHostConfig::max_ejection_percent),
    /// so that routing ignored circuits until some closed (each crossing is
    /// also logged as a warning).
    pub fn ejection_panics(&self) -> u64 {
        self.roster.load().ejection_panics()
    }

    /// Tells the group that `node_id` is back: members still there whose host
    /// is registered become healthy; members that moved stay where they are.
    pub fn on_node_recovery(&self, node_id: u64) {
        // The contract returns nothing; a group the writer no longer has
        // (the runtime shut down) has nothing to recover.
        let _ = self.call(|reply| Command::GroupNodeRecovery(self.group, node_id, reply));
    }

    /// `Healthy`, `Degraded { healthy, total }` or `Dead`.
    pub fn health(&self) -> GroupHealth {
        self.roster.load().health()
    }

    /// Every member, ordered by index.
    pub fn replicas(&self) -> Vec<MemberInfo> {
        self.roster.load().members()
    }

    /// Number of members, healthy or not.
    pub fn replica_count(&self) -> u8 {
        self.roster.load().len()
    }

    /// Number of healthy members.
    pub fn healthy_count(&self) -> u8 {
        self.roster.load().healthy_count()
    }

    /// Increases on every re-placement of a member.
    pub fn term(&self) -> u64 {
        self.roster.load().term()
    }

    /// Increases on every roster the writer publishes for this group.
    pub fn epoch(&self) -> u64 {
        self.roster.load().epoch()
    }

    /// Sends a change to the writer and waits for its answer. A removed
    /// group takes no change: `Removed`, whichever handle removed it.
    fn call<T>(
        &self,
        command: impl FnOnce(Reply<Result<T, GroupError>>) -> Command,
    ) -> Result<T, GroupError> {
        if self.roster.load().is_removed() {
            return Err(GroupError::Removed);
        }
        match self.engine.call(command)? {
            Err(GroupError::UnknownGroup(_)) if self.roster.load().is_removed() => {
                Err(GroupError::Removed)
            }
            answer => answer,
        }
    }
}

/// Finding groups again: a handle can always be had for a live group.
impl DaemonRuntime {
    /// A handle to the live group with `group_id`, if there is one (the first
    /// spawned, in the unlikely case that two seeds share an id). Routes
    /// through it keep their own rotation, apart from other handles'.
    pub fn group(&self, group_id: u32) -> Option<ReplicaGroup> {
        self.groups().into_iter().find(|g| g.group_id() == group_id)
    }

    /// Handles to every live group, in spawn order; empty once the runtime
    /// shut down.
    pub fn groups(&self) -> Vec<ReplicaGroup> {
        let engine = self.engine();
        match engine.call(Command::Groups) {
            Ok(handles) => handles
                .into_iter()
                .map(|handle| ReplicaGroup::new(engine, handle))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}
