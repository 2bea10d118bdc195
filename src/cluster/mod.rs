//! Cluster mode (feature `etcd`): membership and group changes from etcd,
//! applied in revision order, so every router process holds identical
//! rosters.
//!
//! - A node process holds its [`NodeInfo`](crate::NodeInfo) under
//!   `<prefix>/nodes/<id>` with a lease it keeps alive ([`NodeMembership`]).
//!   The lease expiring is the node's failure, after a debounce window (see
//!   [`schema`]); a new lease for the same id is its recovery.
//! - Group intents (kind, seed, replica count, strategy) live under
//!   `<prefix>/groups/<group id>`; [`ClusterRuntime::spawn_group`] writes one.
//! - Every [`ClusterRuntime`] watches the prefix and feeds the events, strictly
//!   in revision order, to its own runtime's writer. Placement is
//!   deterministic, so all processes hold the same rosters at the same
//!   revision ([`ClusterStatus::digest`] checks it). A process hosts only the
//!   replicas placed on its own node; delivering to another is
//!   [`DeliverError::HostedElsewhere`](crate::DeliverError::HostedElsewhere).
//!
//! Routing is untouched: the same lock-free read of a roster snapshot.
//! tokio and the etcd client stay inside this module.
//!
//! A process that joins late replays the prefix's history from revision 1
//! (placement depends on the order of changes, not just the final state). If
//! etcd compacted that history, the process applies the current state
//! instead and warns: its rosters can then differ from older processes'
//! until the groups are rescaled.
//!
//! Building this feature needs `protoc` (Debian: `protobuf-compiler`) for
//! `etcd-client`'s build script. The tests and the `cluster` example run a
//! vendored etcd on loopback (`LocalEtcd` in `crates/testkit`).

mod feed;
mod member;
mod process;
pub mod schema;
mod shared;
mod watcher;

use std::time::Duration;

use thiserror::Error;

pub use feed::FeedStats;
pub use member::NodeMembership;
pub use process::{ClusterRuntime, ClusterStatus};

/// Where the cluster's state lives and how quickly to react.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster, e.g. `/replica-router`.
    pub prefix: String,
    /// Lease time to live of a node's registration (etcd counts whole
    /// seconds; default 1 s).
    pub lease_ttl: Duration,
    /// How long a node's key may stay gone before it is declared failed
    /// (default 0). A node back within the window causes no re-placement:
    /// flapping is absorbed, at the cost of failing over this much later.
    pub debounce: Duration,
    /// Longest wait to connect, and for any single etcd request (default 2 s).
    pub timeout: Duration,
}

impl ClusterOptions {
    /// Options for `endpoint` under `prefix`, with the defaults above.
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        ClusterOptions {
            endpoints: vec![endpoint.into()],
            prefix: prefix.into().trim_end_matches('/').to_owned(),
            lease_ttl: Duration::from_secs(1),
            debounce: Duration::ZERO,
            timeout: Duration::from_secs(2),
        }
    }
}

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
    /// The runtime refused a change (the message says which and why).
    #[error("runtime refused the change: {0}")]
    Refused(String),
    /// The change was written but this process did not apply it in time.
    #[error("revision {revision} not applied within {waited:?}")]
    NotApplied {
        /// The revision written.
        revision: i64,
        /// How long it waited.
        waited: Duration,
    },
    /// The options are invalid.
    #[error("invalid cluster options: {0}")]
    InvalidOptions(String),
}

/// Connects and checks etcd answers, within `options.timeout`.
async fn connect(options: &ClusterOptions) -> Result<etcd_client::Client, ClusterError> {
    if options.endpoints.is_empty() {
        return Err(ClusterError::InvalidOptions("no etcd endpoint".into()));
    }
    let unreachable = |reason: String| ClusterError::Unreachable {
        endpoint: options.endpoints.join(","),
        waited: options.timeout,
        reason,
    };
    let connect_options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(options.timeout)
        .with_timeout(options.timeout);
    let attempt = async {
        let mut client =
            etcd_client::Client::connect(&options.endpoints, Some(connect_options)).await?;
        client.get(options.prefix.as_bytes(), None).await?;
        Ok::<_, etcd_client::Error>(client)
    };
    match tokio::time::timeout(options.timeout, attempt).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

/// A small tokio runtime owned by one cluster object.
fn tokio_runtime(name: &str) -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Etcd(format!("cannot start the {name} thread: {e}")))
}

/// A random-enough id of this process, to tell node claimers apart.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let material = format!("{}-{nanos}-{:p}", std::process::id(), &nanos);
    blake3::hash(material.as_bytes()).to_hex()[..16].to_owned()
}
