//! The errors of cluster mode: one variant per cause, naming what failed.

use std::time::Duration;

use thiserror::Error;

/// Errors of cluster mode.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// etcd did not answer within the timeout.
    #[error("etcd at {endpoint} unreachable after {waited:?}: {reason}")]
    Unreachable {
        /// The endpoints tried.
        endpoint: String,
        /// How long it waited.
        waited: Duration,
        /// What the client said.
        reason: String,
    },
    /// The TLS handshake failed: a CA that did not sign etcd's certificate,
    /// a client certificate etcd does not trust, or unreadable PEM.
    #[error("TLS with etcd at {endpoint} failed: {reason}")]
    Tls {
        /// The endpoints tried.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// etcd refused the credentials, or the user lacks the permission.
    #[error("etcd refused user {user:?}: {reason}")]
    AuthFailed {
        /// The user name given (empty without one).
        user: String,
        /// What etcd said.
        reason: String,
    },
    /// Another live process holds this node id.
    #[error("node {node_id} is already claimed by process instance {holder}")]
    DuplicateNode {
        /// The node id.
        node_id: u64,
        /// The instance id of the process holding it.
        holder: String,
    },
    /// An etcd request failed.
    #[error("etcd request failed: {0}")]
    Etcd(String),
    /// The runtime refused the change (the message says which and why).
    #[error("runtime refused the change: {0}")]
    Refused(String),
    /// The cluster has no group with this id.
    #[error("no group {0:#010x} in this cluster")]
    UnknownGroup(u32),
    /// Seeds must be sealed, and this process has no cluster secret
    /// (`ClusterOptions::with_secret`).
    #[error("no cluster secret: group seeds can only be written sealed")]
    NoSecret,
    /// The change was written but this process did not apply it in time.
    #[error("revision {revision} not applied within {waited:?}")]
    NotApplied {
        /// The revision written.
        revision: i64,
        /// How long it waited.
        waited: Duration,
    },
    /// etcd compacted the history past every checkpoint this process could
    /// start from, so it cannot know the rosters exactly.
    #[error("history compacted at revision {compacted}, after the newest usable checkpoint ({checkpoint})")]
    HistoryCompacted {
        /// The revision of the newest checkpoint (0: none).
        checkpoint: i64,
        /// etcd's compaction revision.
        compacted: i64,
    },
    /// This process's connection to etcd is closed (it is shutting down).
    #[error("the cluster connection is closed")]
    Closed,
    /// The options are invalid.
    #[error("invalid cluster options: {0}")]
    InvalidOptions(String),
}
