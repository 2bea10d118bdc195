//! The runtime: nodes, daemon factories, the registry, the writer thread, and
//! the lifecycle Registering → Ready → ShuttingDown.

use std::fmt;

use bytes::Bytes;

use crate::control::{Command, Engine, Hosting, Phase, Reply};
use crate::daemon::{Event, MeshDaemon};
use crate::error::{DeliverError, RuntimeError};
use crate::node::NodeInfo;
use crate::sync::Arc;

/// Hosts replica groups: knows the nodes, creates daemons from registered
/// factories, delivers events to them, and runs the writer thread that
/// applies every change.
///
/// Cheap to clone (an `Arc`); every clone is the same runtime. The writer
/// thread stops at [`shutdown`](Self::shutdown), or when the last clone (and
/// the last group handle) is dropped.
///
/// ```
/// use replica_router::{DaemonRuntime, NodeInfo};
/// let runtime = DaemonRuntime::new((1..=3).map(NodeInfo::new));
/// assert!(!runtime.is_ready());
/// runtime.start().unwrap();
/// assert!(runtime.is_ready());
/// runtime.shutdown();
/// ```
#[derive(Clone)]
pub struct DaemonRuntime {
    engine: Arc<Engine>,
}

impl fmt::Debug for DaemonRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (replicas, kinds) = self.engine.registered();
        f.debug_struct("DaemonRuntime")
            .field("phase", &self.engine.phase())
            .field("replicas", &replicas)
            .field("kinds", &kinds)
            .finish_non_exhaustive()
    }
}

impl DaemonRuntime {
    /// A runtime over `nodes`, in the Registering phase, with its writer
    /// thread running. A repeated node id keeps the last description.
    pub fn new(nodes: impl IntoIterator<Item = NodeInfo>) -> DaemonRuntime {
        Self::build(nodes, Hosting::Every)
    }

    /// The runtime of one process in a cluster of router processes, where
    /// this process is node `local_node`: it places every replica exactly as
    /// every other process does (placement is deterministic), routes to all
    /// of them, but creates and runs only the replicas placed on
    /// `local_node`. Delivering to any other replica returns
    /// [`DeliverError::HostedElsewhere`] naming its node, for the embedding
    /// transport to forward.
    ///
    /// Feed every process the same changes in the same order (the `etcd`
    /// feature does this from etcd's revision order) and compare
    /// [`roster_digest`](Self::roster_digest)s to check they agree.
    ///
    /// ```
    /// use replica_router::*;
    /// # struct Echo;
    /// # impl MeshDaemon for Echo {
    /// #     fn name(&self) -> &str { "echo" }
    /// #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![]) }
    /// # }
    /// let nodes = || (1..=3).map(NodeInfo::new);
    /// let (a, b) = (DaemonRuntime::for_node(1, nodes()), DaemonRuntime::for_node(2, nodes()));
    /// for rt in [&a, &b] {
    ///     rt.register_factory("echo", || Box::new(Echo)).unwrap();
    ///     rt.start().unwrap();
    /// }
    /// let config = || ReplicaGroupConfig {
    ///     replica_count: 3, group_seed: [5; 32],
    ///     lb_strategy: Strategy::RoundRobin, host_config: DaemonHostConfig::default(),
    /// };
    /// let (ga, _gb) = (ReplicaGroup::spawn(&a, "echo", config()).unwrap(),
    ///                  ReplicaGroup::spawn(&b, "echo", config()).unwrap());
    /// assert_eq!(a.roster_digest().unwrap(), b.roster_digest().unwrap());
    /// let on_2 = ga.replicas().into_iter().find(|m| m.node_id == 2).unwrap();
    /// assert!(matches!(a.deliver(on_2.origin_hash, &Event::new("x")),
    ///                  Err(DeliverError::HostedElsewhere { node_id: 2, .. })));
    /// ```
    pub fn for_node(local_node: u64, nodes: impl IntoIterator<Item = NodeInfo>) -> DaemonRuntime {
        Self::build(nodes, Hosting::Node(local_node))
    }

    /// The runtime of a process that routes and runs no replica (a cluster
    /// observer): it places every replica exactly as the node processes do,
    /// and every delivery is [`DeliverError::HostedElsewhere`], naming the
    /// node whose process runs the replica. Factories are still needed: a
    /// kind's `requirements()` decide placement.
    pub fn observer(nodes: impl IntoIterator<Item = NodeInfo>) -> DaemonRuntime {
        Self::build(nodes, Hosting::Nothing)
    }

    fn build(nodes: impl IntoIterator<Item = NodeInfo>, hosting: Hosting) -> DaemonRuntime {
        DaemonRuntime {
            engine: Arc::new(Engine::start(nodes, hosting)),
        }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Registers the factory for `kind`. Works before and after
    /// [`start`](Self::start); a kind can be registered once.
    pub fn register_factory<F>(&self, kind: &str, f: F) -> Result<(), RuntimeError>
    where
        F: Fn() -> Box<dyn MeshDaemon> + Send + Sync + 'static,
    {
        self.engine.register_factory(kind, Arc::new(f))
    }

    /// Moves Registering → Ready, after which groups can be spawned.
    /// Starting a ready runtime is a no-op; a shut-down one cannot start.
    pub fn start(&self) -> Result<(), RuntimeError> {
        self.engine.make_ready()
    }

    /// Whether the runtime is Ready.
    pub fn is_ready(&self) -> bool {
        self.engine.phase() == Phase::Ready
    }

    /// Moves to ShuttingDown: every group's roster is closed (routes return
    /// `ShuttingDown`), every daemon is unregistered, and the writer thread is
    /// joined. Idempotent.
    pub fn shutdown(&self) {
        self.engine.shutdown();
    }

    /// Adds a node; members stuck on failed nodes may move to it.
    pub fn add_node(&self, node: NodeInfo) -> Result<(), RuntimeError> {
        self.runtime_call(|reply| Command::AddNode(node, reply))?
    }

    /// Marks a node failed and fails over every group with a member on it.
    /// Returns the number of replicas re-placed on other nodes.
    pub fn node_failed(&self, node_id: u64) -> Result<usize, RuntimeError> {
        self.runtime_call(|reply| Command::NodeFailed(node_id, reply))?
    }

    /// Marks a node alive again; members still on it whose host is registered
    /// become healthy. Returns how many.
    pub fn node_recovered(&self, node_id: u64) -> Result<usize, RuntimeError> {
        self.runtime_call(|reply| Command::NodeRecovered(node_id, reply))?
    }

    /// A digest of every group's roster: group ids, and each member's index,
    /// origin hash, node and health, in spawn order. Two runtimes that
    /// applied the same changes in the same order have equal digests.
    pub fn roster_digest(&self) -> Result<u64, RuntimeError> {
        self.runtime_call(Command::Digest)
    }

    /// The state placement depends on, for a cluster checkpoint.
    #[cfg(feature = "etcd")]
    pub(crate) fn snapshot(&self) -> Result<crate::control::WriterState, RuntimeError> {
        self.runtime_call(Command::Snapshot)
    }

    /// Restores a checkpoint into this runtime, which must hold no node and
    /// no group.
    #[cfg(feature = "etcd")]
    pub(crate) fn restore(
        &self,
        state: crate::control::WriterState,
    ) -> Result<(), crate::GroupError> {
        self.engine
            .call(|reply| Command::Restore(state, reply))
            .map_err(crate::GroupError::from)?
    }

    /// Delivers `event` to the replica with `origin_hash` and returns its outputs.
    ///
    /// The replica processes one event at a time; different replicas process
    /// in parallel. The replica's in-flight count covers exactly this call.
    pub fn deliver(&self, origin_hash: u64, event: &Event) -> Result<Vec<Bytes>, DeliverError> {
        self.engine.deliver(origin_hash, event)
    }

    /// The in-flight count of a registered replica, for the loom models.
    #[cfg(replica_router_loom)]
    pub(crate) fn in_flight_of(&self, origin_hash: u64) -> Option<u32> {
        self.engine.in_flight_of(origin_hash)
    }

    fn runtime_call<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        if self.engine.phase() == Phase::ShuttingDown {
            return Err(RuntimeError::ShuttingDown);
        }
        Ok(self.engine.call(command)?)
    }
}
