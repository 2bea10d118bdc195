//! Error types. Each names what it is about: the group, the kind, the node or
//! the replica's origin hash, so a log line is enough to act on.

use thiserror::Error;

/// Errors of [`ReplicaGroup`](crate::ReplicaGroup) operations.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The runtime has not been started: call [`DaemonRuntime::start`](crate::DaemonRuntime::start) first.
    #[error("runtime is not ready: call DaemonRuntime::start before spawning groups")]
    NotReady,
    /// No factory is registered for the kind.
    #[error("no factory registered for kind `{0}`")]
    FactoryNotFound(String),
    /// The configuration or argument is invalid; the message says which part and why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// No eligible node is left for a replica; nothing was changed.
    #[error("placement failed: {0}")]
    PlacementFailed(String),
    /// The daemon registry refused the change (for example an origin hash already in use).
    #[error("registry refused the change: {0}")]
    RegistryFailed(String),
    /// A daemon factory panicked or failed; nothing was changed.
    #[error("daemon factory failed: {0}")]
    FactoryFailed(String),
    /// No member admits traffic: every member is unhealthy, has an open circuit,
    /// or does not satisfy the request's tag requirements.
    #[error("no healthy member can take the request")]
    NoHealthyMember,
    /// The runtime is shutting down or has shut down.
    #[error("runtime is shutting down")]
    ShuttingDown,
    /// A change was asked for from code the writer thread itself runs (a
    /// daemon factory, `requirements()` or a daemon's `Drop`): waiting there
    /// for the writer would deadlock, so the change is refused.
    #[error("a group change was requested from code running on the writer thread (a daemon factory or drop), where it would deadlock")]
    CalledFromWriter,
    /// The group was removed ([`ReplicaGroup::remove`](crate::ReplicaGroup::remove)):
    /// it routes nowhere and takes no change.
    #[error("the group was removed")]
    Removed,
    /// The writer does not know the group (the handle outlived it).
    #[error("group {0:#010x} is not known to the runtime's writer")]
    UnknownGroup(u32),
    /// User code the writer called for this change panicked, such as a
    /// daemon's `requirements()`: the change was not made. The message names
    /// the kind, the call and the panic.
    #[error("daemon panicked: {0}")]
    DaemonPanicked(String),
    /// The runtime's writer thread stopped for a reason other than shutdown:
    /// no change can be made any more. Routing and delivery on the last
    /// published rosters go on.
    #[error("the runtime's writer thread stopped: {0}")]
    WriterStopped(String),
}

/// Errors of [`DaemonRuntime`](crate::DaemonRuntime) operations.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The node id is not known to the runtime.
    #[error("node {0} is not known to the runtime")]
    UnknownNode(u64),
    /// A node with this id is already known to the runtime.
    #[error("node {0} is already known to the runtime")]
    DuplicateNode(u64),
    /// A factory for this kind is already registered.
    #[error("a factory for kind `{0}` is already registered")]
    DuplicateKind(String),
    /// The kind name is empty.
    #[error("invalid kind name {0:?}: a kind must be a non-empty string")]
    InvalidKind(String),
    /// The runtime is shutting down or has shut down.
    #[error("runtime is shutting down")]
    ShuttingDown,
    /// A change was asked for from code the writer thread itself runs (a
    /// daemon factory, `requirements()` or a daemon's `Drop`), where waiting
    /// for the writer would deadlock.
    #[error("a runtime change was requested from code running on the writer thread (a daemon factory or drop), where it would deadlock")]
    CalledFromWriter,
    /// The runtime's writer thread stopped for a reason other than shutdown:
    /// no change can be made any more.
    #[error("the runtime's writer thread stopped: {0}")]
    WriterStopped(String),
}

/// Errors of [`DaemonRuntime::deliver`](crate::DaemonRuntime::deliver).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// No replica with this origin hash is registered (never was, or was removed).
    #[error("no replica with origin hash {0:#018x} is registered")]
    UnknownOrigin(u64),
    /// The replica's circuit is open after repeated failures; route to another member.
    #[error("circuit of replica {0:#018x} is open after repeated failures")]
    CircuitOpen(u64),
    /// The daemon returned an error for this event.
    #[error("replica {origin_hash:#018x} failed the event: {error}")]
    Daemon {
        /// The replica that failed.
        origin_hash: u64,
        /// What the daemon returned.
        error: DaemonError,
    },
    /// The daemon panicked while processing the event; the panic was contained.
    #[error("replica {origin_hash:#018x} panicked while processing the event: {message}")]
    Panicked {
        /// The replica that panicked.
        origin_hash: u64,
        /// The panic message, when it was a string.
        message: String,
    },
    /// The replica runs in another node's process (cluster mode): forward the
    /// event to `node_id`.
    #[error("replica {origin_hash:#018x} is hosted by node {node_id}, not by this process")]
    HostedElsewhere {
        /// The replica.
        origin_hash: u64,
        /// The node whose process hosts it.
        node_id: u64,
    },
    /// The runtime is shutting down or has shut down.
    #[error("runtime is shutting down")]
    ShuttingDown,
    /// The replica is processing an event on this very thread: a daemon
    /// delivered to itself (directly or through other daemons). Delivering
    /// would deadlock, so the event was not processed.
    #[error("replica {0:#018x} is already processing an event on this thread; a daemon cannot deliver to itself")]
    Reentrant(u64),
}

/// Errors a [`MeshDaemon`](crate::MeshDaemon) returns from `process`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The event could not be processed; the message says why.
    #[error("processing failed: {0}")]
    ProcessFailed(String),
}
