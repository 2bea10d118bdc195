//! The runtime: nodes, daemon factories, the registry, the writer thread, and
//! the lifecycle Registering → Ready → ShuttingDown.

use std::fmt;

use bytes::Bytes;

use crate::daemon::{Event, MeshDaemon};
use crate::error::{DeliverError, RuntimeError};
use crate::node::NodeInfo;
use crate::node_table::NodeTable;
use crate::registry::DaemonRegistry;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::channel::{self, Sender};
use crate::sync::thread::{self, JoinHandle, ThreadId};
use crate::sync::{Arc, Mutex};
use crate::writer::{Command, Factories, Reply, Writer};

const REGISTERING: u8 = 0;
const READY: u8 = 1;
const SHUTTING_DOWN: u8 = 2;

/// The lifecycle phase of a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Registering,
    Ready,
    ShuttingDown,
}

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
    inner: Arc<Inner>,
}

struct Inner {
    phase: AtomicU8,
    commands: Sender<Command>,
    registry: Arc<DaemonRegistry>,
    factories: Arc<Factories>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_thread: ThreadId,
}

impl fmt::Debug for DaemonRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonRuntime")
            .field("phase", &self.phase())
            .field("replicas", &self.inner.registry.len())
            .field("kinds", &self.inner.factories.len())
            .finish_non_exhaustive()
    }
}

impl DaemonRuntime {
    /// A runtime over `nodes`, in the Registering phase, with its writer
    /// thread running. A repeated node id keeps the last description.
    pub fn new(nodes: impl IntoIterator<Item = NodeInfo>) -> DaemonRuntime {
        Self::build(nodes, None)
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
        Self::build(nodes, Some(local_node))
    }

    fn build(nodes: impl IntoIterator<Item = NodeInfo>, local_node: Option<u64>) -> DaemonRuntime {
        let registry = Arc::new(DaemonRegistry::default());
        let factories = Arc::new(Factories::default());
        let writer = Writer::new(
            NodeTable::new(nodes, local_node),
            Arc::clone(&registry),
            Arc::clone(&factories),
        );
        let (commands, receiver) = channel::unbounded();
        let handle = thread::Builder::new()
            .name("replica-router-writer".into())
            .spawn(move || writer.run(receiver))
            .expect("spawn the replica-router writer thread");
        let writer_thread = handle.thread().id();
        DaemonRuntime {
            inner: Arc::new(Inner {
                writer_thread,
                phase: AtomicU8::new(REGISTERING),
                commands,
                registry,
                factories,
                writer: Mutex::new(Some(handle)),
            }),
        }
    }

    /// Registers the factory for `kind`. Works before and after
    /// [`start`](Self::start); a kind can be registered once.
    pub fn register_factory<F>(&self, kind: &str, f: F) -> Result<(), RuntimeError>
    where
        F: Fn() -> Box<dyn MeshDaemon> + Send + Sync + 'static,
    {
        if self.phase() == Phase::ShuttingDown {
            return Err(RuntimeError::ShuttingDown);
        }
        if kind.is_empty() {
            return Err(RuntimeError::InvalidKind(kind.to_owned()));
        }
        let factories = &self.inner.factories;
        if factories.insert_new(kind.to_owned(), Arc::new(f)) {
            Ok(())
        } else {
            Err(RuntimeError::DuplicateKind(kind.to_owned()))
        }
    }

    /// Moves Registering → Ready, after which groups can be spawned.
    /// Starting a ready runtime is a no-op; a shut-down one cannot start.
    pub fn start(&self) -> Result<(), RuntimeError> {
        match self.inner.phase.compare_exchange(
            REGISTERING,
            READY,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) | Err(READY) => Ok(()),
            Err(_) => Err(RuntimeError::ShuttingDown),
        }
    }

    /// Whether the runtime is Ready.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Ready
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::Acquire) {
            REGISTERING => Phase::Registering,
            READY => Phase::Ready,
            _ => Phase::ShuttingDown,
        }
    }

    /// Moves to ShuttingDown: every group's roster is closed (routes return
    /// `ShuttingDown`), every daemon is unregistered, and the writer thread is
    /// joined. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown();
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

    /// Delivers `event` to the replica with `origin_hash` and returns its outputs.
    ///
    /// The replica processes one event at a time; different replicas process
    /// in parallel. The replica's in-flight count covers exactly this call.
    pub fn deliver(&self, origin_hash: u64, event: &Event) -> Result<Vec<Bytes>, DeliverError> {
        if self.phase() == Phase::ShuttingDown {
            return Err(DeliverError::ShuttingDown);
        }
        let host = self
            .inner
            .registry
            .get(origin_hash)
            .ok_or(DeliverError::UnknownOrigin(origin_hash))?;
        host.process(event)
    }

    /// The in-flight count of a registered replica, for the loom models.
    #[cfg(replica_router_loom)]
    pub(crate) fn in_flight_of(&self, origin_hash: u64) -> Option<u32> {
        let host = self.inner.registry.get(origin_hash)?;
        Some(host.stats().in_flight())
    }

    /// Sends a command and waits for its reply; `None` once the writer is
    /// gone, or when called from the writer thread itself (from inside a
    /// factory), where waiting would deadlock.
    pub(crate) fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Option<T> {
        if thread::current().id() == self.inner.writer_thread {
            return None;
        }
        let (reply, answer) = channel::bounded(1);
        self.inner.commands.send(command(reply)).ok()?;
        answer.recv().ok()
    }

    fn runtime_call<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        if self.phase() == Phase::ShuttingDown {
            return Err(RuntimeError::ShuttingDown);
        }
        self.call(command).ok_or(RuntimeError::ShuttingDown)
    }
}

impl Inner {
    fn shutdown(&self) {
        self.phase.store(SHUTTING_DOWN, Ordering::Release);
        let (reply, answer) = channel::bounded(1);
        let sent = self.commands.send(Command::Shutdown(reply)).is_ok();
        // A factory that shuts the runtime down runs on the writer thread,
        // which can neither wait for itself nor join itself; the writer
        // applies the shutdown right after the current command.
        if thread::current().id() == self.writer_thread {
            return;
        }
        if sent {
            let _ = answer.recv();
        }
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
