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
//! - [`Strategy`] picks a member per request, using the [`RequestContext`]'s
//!   routing key, session, zone preference and tag requirements.
//!
//! # Performance
//!
//! Measured on 2 cores against the design this crate replaces (group state
//! behind a `parking_lot::Mutex`, routing under the lock), ratios from one
//! run (`cargo bench --bench route`; BENCHMARKS.md has the tables):
//!
//! - [`Router::route`], round robin: 2.5 ns, 0.19× the mutex on one thread
//!   and 0.03× with two threads routing at once, at 3, 8 and 255 members.
//! - [`ReplicaGroup::route_event`]: 3.7 ns, 0.29× and 0.04×.
//! - Consistent hashing: one multiply and one table read, within 2× of
//!   round robin; the exact-minimum strategies scan every member (about
//!   150 ns at 255 members).
//! - A change is a blocking call to the writer: about 60 µs of thread
//!   hand-off plus its work; `node_failed` of a node hosting replicas of
//!   10,000 groups takes 13 ms.
//!
//! # Limitations
//!
//! - A group lives until its runtime shuts down; dropping the handle does not
//!   remove its replicas.
//! - `route_event` caches up to 8 groups per thread; a thread that routes on
//!   more pays a full snapshot load when it switches to an evicted group. Use
//!   a [`Router`] per group on such threads.
//! - Calls that change state block until the writer has applied them; calling
//!   one from inside a daemon factory (which runs on the writer) fails with
//!   `ShuttingDown` instead of deadlocking.

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "etcd")]
pub mod cluster;
mod context;
mod daemon;
mod dispatch;
mod error;
mod group;
mod group_state;
mod identity;
mod node;
mod node_table;
mod placement;
mod registry;
mod roster;
mod route_cache;
mod router;
mod runtime;
mod stats;
mod strategy;
mod sync;
mod writer;

pub use context::RequestContext;
pub use daemon::{DaemonHostConfig, Event, MeshDaemon};
pub use dispatch::{DispatchError, MAX_DISPATCH_ATTEMPTS};
pub use error::{DaemonError, DeliverError, GroupError, RuntimeError};
pub use group::{GroupHealth, MemberInfo, ReplicaGroup, ReplicaGroupConfig};
pub use identity::{derive_replica_identity, ReplicaIdentity};
pub use node::{CapabilityFilter, NodeInfo, DEFAULT_NODE_WEIGHT};
pub use router::Router;
pub use runtime::DaemonRuntime;
pub use strategy::Strategy;

/// What the loom models in `loom-tests/` reach inside the crate; only under
/// `--cfg replica_router_loom`.
#[cfg(replica_router_loom)]
#[doc(hidden)]
pub use sync::hooks as loom_hooks;
