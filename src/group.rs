//! ReplicaGroup: the handle users route, scale and fail over with.

use std::fmt;

use bytes::Bytes;

use crate::context::RequestContext;
use crate::daemon::DaemonHostConfig;
use crate::daemon::Event;
use crate::dispatch::{self, DispatchError};
use crate::error::GroupError;
use crate::node_table::GroupKey;
use crate::roster::Roster;
use crate::router::Router;
use crate::runtime::{DaemonRuntime, Phase};
use crate::strategy::Strategy;
use crate::sync::{process_counter, Arc, Publisher};
use crate::writer::{Command, GroupSpec};
use crate::{identity::Hex, route_cache};

/// How to spawn a group. Build it as a struct literal.
///
/// `Debug` redacts `group_seed`: whoever holds the seed can sign as every replica.
#[derive(Clone)]
pub struct ReplicaGroupConfig {
    /// Number of replicas, 1 to 255.
    pub replica_count: u8,
    /// The secret every replica identity derives from.
    pub group_seed: [u8; 32],
    /// How routes choose a member.
    pub lb_strategy: Strategy,
    /// How each replica's host treats failures.
    pub host_config: DaemonHostConfig,
}

impl fmt::Debug for ReplicaGroupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaGroupConfig")
            .field("replica_count", &self.replica_count)
            .field("group_seed", &"<redacted>")
            .field("lb_strategy", &self.lb_strategy)
            .field("host_config", &self.host_config)
            .finish()
    }
}

/// One member of a group, as [`ReplicaGroup::replicas`] reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The replica's index in the group.
    pub index: u8,
    /// The replica's routing address.
    pub origin_hash: u64,
    /// The node it is placed on.
    pub node_id: u64,
    /// Its ed25519 public key.
    pub entity_id_bytes: [u8; 32],
    /// Whether routing may pick it.
    pub healthy: bool,
}

impl fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberInfo")
            .field("index", &self.index)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("node_id", &self.node_id)
            .field("entity_id_bytes", &Hex(&self.entity_id_bytes))
            .field("healthy", &self.healthy)
            .finish()
    }
}

/// A group's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupHealth {
    /// Every member is healthy.
    Healthy,
    /// Some members are healthy.
    Degraded {
        /// Healthy members.
        healthy: u8,
        /// All members.
        total: u8,
    },
    /// No member is healthy.
    Dead,
}

/// A replica group: N interchangeable replicas of one daemon kind, each with
/// a deterministic identity, on distinct nodes.
///
/// Reads (`route_event`, `replicas`, `health`, …) are lock-free loads of the
/// current roster. Changes (`scale_to`, `on_node_failure`, …) are applied by
/// the runtime's writer thread; each call returns after the new roster is
/// published. `Send + Sync`: share it in an `Arc`.
pub struct ReplicaGroup {
    runtime: DaemonRuntime,
    key: GroupKey,
    uid: u64,
    group_id: u32,
    kind: Arc<str>,
    strategy: Strategy,
    roster: Arc<Publisher<Roster>>,
}

impl fmt::Debug for ReplicaGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roster = self.roster.load();
        f.debug_struct("ReplicaGroup")
            .field("group_id", &format_args!("{:#010x}", self.group_id))
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
        match runtime.phase() {
            Phase::Registering => return Err(GroupError::NotReady),
            Phase::ShuttingDown => return Err(GroupError::ShuttingDown),
            Phase::Ready => {}
        }
        let strategy = config.lb_strategy;
        let spec = GroupSpec {
            kind: kind.to_owned(),
            seed: config.group_seed,
            count: config.replica_count,
            strategy,
            host_config: config.host_config,
        };
        let spawned = runtime
            .call(|reply| Command::Spawn(spec, reply))
            .ok_or(GroupError::ShuttingDown)??;
        process_counter!(UID = 1);
        Ok(ReplicaGroup {
            runtime: runtime.clone(),
            key: spawned.key,
            uid: UID.next(1),
            group_id: spawned.group_id,
            kind: kind.into(),
            strategy,
            roster: spawned.roster,
        })
    }

    /// The daemon kind, pinned at spawn.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The group id: the first 4 bytes (LE) of `blake3::hash(seed)`.
    pub fn group_id(&self) -> u32 {
        self.group_id
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
        route_cache::route(self.uid, &self.roster, self.strategy, ctx)
    }

    /// A per-thread routing handle, for the hottest paths.
    pub fn router(&self) -> Router {
        Router::new(&self.roster, self.strategy, self.runtime.clone())
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
        dispatch::dispatch(&self.runtime, event, || self.route_event(ctx))
    }

    /// Grows or shrinks to `n` replicas. Growth places each new replica on a
    /// node holding no member of the group; shrinking removes the highest
    /// indices first and unregisters them. Members stuck on failed nodes are
    /// re-placed on the way when a node is free. All or nothing.
    pub fn scale_to(&self, n: u8) -> Result<(), GroupError> {
        self.runtime
            .call(|reply| Command::Scale(self.key, n, reply))
            .ok_or(GroupError::ShuttingDown)?
    }

    /// Tells the group that `node_id` failed: its members there are marked
    /// unhealthy and re-placed on other nodes with the same identity. Returns
    /// the re-placed indices (empty when the node hosts no member).
    pub fn on_node_failure(&self, node_id: u64) -> Result<Vec<u8>, GroupError> {
        self.runtime
            .call(|reply| Command::GroupNodeFailure(self.key, node_id, reply))
            .ok_or(GroupError::ShuttingDown)?
    }

    /// Tells the group that `node_id` is back: members still there whose host
    /// is registered become healthy; members that moved stay where they are.
    pub fn on_node_recovery(&self, node_id: u64) {
        let _ = self
            .runtime
            .call(|reply| Command::GroupNodeRecovery(self.key, node_id, reply));
    }

    /// `Healthy`, `Degraded { healthy, total }` or `Dead`.
    pub fn health(&self) -> GroupHealth {
        self.roster.load().health()
    }

    /// Every member, ordered by index.
    pub fn replicas(&self) -> Vec<MemberInfo> {
        self.roster
            .load()
            .members()
            .iter()
            .map(|m| m.info())
            .collect()
    }

    /// Number of members, healthy or not.
    pub fn replica_count(&self) -> u8 {
        self.roster.load().members().len() as u8
    }

    /// Number of healthy members.
    pub fn healthy_count(&self) -> u8 {
        self.roster.load().hot().len() as u8
    }

    /// Increases on every re-placement of a member.
    pub fn term(&self) -> u64 {
        self.roster.load().term()
    }

    /// Increases on every roster the writer publishes for this group.
    pub fn epoch(&self) -> u64 {
        self.roster.load().epoch()
    }
}
