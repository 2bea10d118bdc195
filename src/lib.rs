//! Lock-free routing of events to *replica groups*: N interchangeable copies
//! of a daemon, each with a deterministic identity, spread over the nodes of a
//! cluster, load-balanced on every event, and replaced automatically when a
//! node fails.
//!
//! # Hello, replicas
//!
//! ```
//! use bytes::Bytes;
//! use replica_router::*;
//!
//! struct Echo;
//! impl MeshDaemon for Echo {
//!     fn name(&self) -> &str { "echo" }
//!     fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
//!         Ok(vec![event.payload().clone()])
//!     }
//! }
//!
//! let runtime = DaemonRuntime::new((1..=4).map(|id| NodeInfo::new(id).with_zone(if id % 2 == 0 { "a" } else { "b" })));
//! runtime.register_factory("echo", || Box::new(Echo)).unwrap();
//! runtime.start().unwrap();
//!
//! let group = ReplicaGroup::spawn(&runtime, "echo", ReplicaGroupConfig {
//!     replica_count: 3,
//!     group_seed: [42; 32],
//!     lb_strategy: Strategy::RoundRobin,
//!     host_config: DaemonHostConfig::default(),
//! }).unwrap();
//!
//! let origin = group.route_event(&RequestContext::new()).unwrap();
//! assert_eq!(runtime.deliver(origin, &Event::new("hi")).unwrap(), vec![Bytes::from("hi")]);
//!
//! // Node 1 fails: its replica moves to node 4 with the same identity.
//! let before = group.replicas();
//! runtime.node_failed(before[0].node_id).unwrap();
//! let after = group.replicas();
//! assert_eq!(after[0].origin_hash, before[0].origin_hash);
//! assert_ne!(after[0].node_id, before[0].node_id);
//! runtime.shutdown();
//! ```
//!
//! # How it fits together
//!
//! - [`DaemonRuntime`] knows the nodes ([`NodeInfo`]), the daemon factories
//!   ([`MeshDaemon`]), and delivers events ([`DaemonRuntime::deliver`]). One
//!   writer thread per runtime applies every change.
//! - [`ReplicaGroup`] routes ([`ReplicaGroup::route_event`], or a per-thread
//!   [`Router`]) on an immutable roster snapshot published through
//!   `arc_swap`, so routing never takes a lock and never waits for a change.
//! - Identities come from [`derive_replica_identity`]: the same seed and index
//!   give the same ed25519 key and origin hash on every machine.
//! - [`Strategy`] picks a replica per request, using the [`RequestContext`]'s
//!   routing key, session, zone preference and tag requirements.
//!
//! Inside, the code is laid out by role, and imports run one way: the
//! handles (`runtime.rs`, `group.rs`) → `control/` (the writer thread, the
//! node table, placement, the registry) → `route/` (rosters, routers, the
//! per-thread cache, dispatch) → `strategy/` (one file per family, each
//! owning its table) → `daemon/` (the replica and its live statistics) →
//! the primitives (`identity`, `node`, `context`, `error`, `hash`, `sync`).
//!
//! # Glossary
//!
//! - **replica**: one copy of a group's daemon, with an identity derived from
//!   the group seed and its index, placed on one node. The API reports a
//!   replica as a [`MemberInfo`] ("member of the group").
//! - **roster**: the immutable snapshot of a group the writer publishes:
//!   every replica, their health, and the strategy's table.
//! - **candidate**: a healthy replica as a strategy sees it in a roster.
//! - **writer**: the one thread per runtime that applies every change.
//! - **origin hash**: a replica's 64-bit routing address.
//! - **node**: a host replicas are placed on; in cluster mode, one router
//!   process.
//!
//! # Guarantees
//!
//! What the crate promises, each checked by tests (which cite these numbers).
//!
//! 1. A group of 0 replicas is [`GroupError::InvalidConfig`], in
//!    [`ReplicaGroup::spawn`] and in [`ReplicaGroup::scale_to`].
//! 2. Identities are a pure function of the group seed and the index (see
//!    [`derive_replica_identity`]); seeds and signing keys never appear in
//!    `Debug` or `Display` output.
//! 3. Replicas of one group go to distinct nodes (distinct zones first, then
//!    the least-loaded node, ties to the lowest id); when no node is left,
//!    spawn and scale fail with `PlacementFailed` and leave nothing behind.
//!    Placement is deterministic: runtimes that apply the same changes in
//!    the same order hold identical rosters.
//! 4. Shrinking removes the highest indices first.
//! 5. A failed node's replicas turn unhealthy and move, with their
//!    identities, to free nodes; with none free they wait, registered and
//!    unhealthy, for a recovery or a `scale_to`. Each move raises the term.
//! 6. A recovered node's replicas that did not move turn healthy again.
//! 7. [`GroupHealth`] is `Healthy`, `Degraded { healthy, total }` or `Dead`.
//! 8. With no healthy replica, routing is `NoHealthyMember`; once a call that
//!    removed a replica (a shrink, a node failure, a removal) has returned,
//!    no route returns it.
//! 9. A group's daemon kind is pinned at spawn, for growth and replacement.
//! 10. Routing reserves nothing: in-flight counts are taken by `deliver`
//!     around `process`, so they cannot leak. Nothing on the route path
//!     allocates.
//! 11. `deliver` keeps each replica's in flight, latency and errors; after
//!     [`DaemonHostConfig::circuit_failure_threshold`] consecutive errors its
//!     circuit opens for [`DaemonHostConfig::circuit_recovery`], then admits
//!     one probe. Every strategy skips open circuits (within
//!     [`DaemonHostConfig::max_ejection_percent`]).
//! 12. `with_zone` prefers a zone and falls back to any healthy replica;
//!     `require_tag` admits only replicas on nodes with the tag.
//! 13. `ConsistentHash` is sticky, balanced (each of N replicas within ±15%
//!     of 1/N of the keys) and minimally disruptive (losing a replica moves
//!     only its keys; restoring it restores the mapping).
//! 14. [`ReplicaGroup::replicas`] is ordered by index; factories can be
//!     registered before and after start, once per kind.
//! 15. [`ReplicaGroup::remove`] is one change: once it returns, every route
//!     and call on the group is `Removed`, deliveries to its replicas are
//!     `UnknownOrigin`, its seed is free again, and nothing of it stays alive.
//! 16. Latency-aware routing forgets: estimates fade over
//!     [`DaemonHostConfig::latency_decay`], equally fast replicas take
//!     turns, and a failed delivery counts as slow.
//!
//! # Performance
//!
//! A route reads the cached roster (one pointer comparison) and runs the
//! strategy's pick: round robin and random touch one candidate, the
//! weighted and consistent-hash strategies read one table entry, the
//! exact-minimum strategies (`LeastConnections`, `LeastLatency`, …) scan
//! every healthy replica. A change is a blocking call to the writer thread.
//! The measured figures, with the commands that produce them, are in
//! `BENCHMARKS.md` in the repository (`cargo bench --bench route`).
//!
//! # Limitations
//!
//! - A group lives until it is removed ([`ReplicaGroup::remove`]) or its
//!   runtime shuts down; dropping every handle does not remove it
//!   ([`DaemonRuntime::groups`] finds it again).
//! - `route_event` keeps a small per-thread cache: up to 8 groups per thread
//!   keep their own rotation exactly, whatever their ids; a thread that
//!   routes on more evicts the least recently used one, which pays one full
//!   snapshot load and restarts its rotation. Use a [`Router`] per group on
//!   such threads.
//! - Calls that change state block until the writer has applied them; calling
//!   one from code the writer runs (a daemon factory) fails with
//!   [`GroupError::CalledFromWriter`] instead of deadlocking.

#![forbid(unsafe_code)]

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "etcd")]
pub mod cluster;
mod config;
mod context;
mod control;
mod daemon;
mod error;
mod group;
mod hash;
mod identity;
#[cfg(feature = "metrics")]
mod metrics;
mod node;
mod route;
mod runtime;
mod strategy;
mod sync;

pub use config::ReplicaGroupConfig;
pub use context::RequestContext;
pub use daemon::{DaemonHostConfig, Event, MeshDaemon};
pub use error::{DaemonError, DeliverError, GroupError, RuntimeError};
pub use group::ReplicaGroup;
pub use identity::{derive_replica_identity, ReplicaIdentity};
pub use node::{CapabilityFilter, NodeInfo, DEFAULT_NODE_WEIGHT};
pub use route::{
    CircuitState, DispatchError, GroupHealth, MemberInfo, MemberStats, Router,
    MAX_DISPATCH_ATTEMPTS,
};
pub use runtime::DaemonRuntime;
pub use strategy::Strategy;

/// What the loom models in `loom-tests/` reach inside the crate. Exists only
/// under `--cfg replica_router_loom`, never in a shipped build.
#[cfg(replica_router_loom)]
#[doc(hidden)]
pub mod loom_hooks {
    use std::time::Duration;

    use crate::{DaemonRuntime, GroupError, MemberInfo, RequestContext, Router};

    /// Advances the circuit's mock clock by `by`.
    pub fn advance_clock(by: Duration) {
        crate::sync::advance_clock(by);
    }

    /// The in-flight count of the replica with `origin_hash`, when registered.
    pub fn in_flight(runtime: &DaemonRuntime, origin_hash: u64) -> Option<u32> {
        runtime.in_flight_of(origin_hash)
    }

    /// One route, with the roster snapshot it was taken on.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Observed {
        /// The snapshot's epoch.
        pub epoch: u64,
        /// The snapshot's members, by index.
        pub members: Vec<MemberInfo>,
        /// What the route returned.
        pub routed: Result<u64, GroupError>,
    }

    /// Routes `ctx` on `router`, reporting the snapshot it routed on.
    pub fn route_observed(router: &mut Router, ctx: &RequestContext) -> Observed {
        let (epoch, members, routed) = router.route_observed(ctx);
        Observed {
            epoch,
            members,
            routed,
        }
    }
}
