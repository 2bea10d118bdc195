//! Cluster mode (feature `etcd`): membership and group changes from etcd,
//! applied in revision order, so every router process holds identical
//! rosters.
//!
//! ```no_run
//! use replica_router::cluster::{ClusterOptions, ClusterRuntime};
//! use replica_router::*;
//! # struct Echo;
//! # impl MeshDaemon for Echo {
//! #     fn name(&self) -> &str { "echo" }
//! #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![]) }
//! # }
//! // The same 32-byte secret in every process, from a file or the environment.
//! let secret = [42u8; 32];
//! let options = ClusterOptions::new("https://etcd.internal:2379", "/replica-router")
//!     .with_secret(secret)
//!     .with_tls(std::fs::read_to_string("ca.pem")?)
//!     .with_user("router", "password");
//! let process = ClusterRuntime::join(options, NodeInfo::new(1).with_zone("a"), |rt| {
//!     rt.register_factory("echo", || Box::new(Echo))
//! })?;
//! let group = process.spawn_group("echo", [7; 32], 3, Strategy::RoundRobin)?;
//! let origin = group.route_event(&RequestContext::new())?;
//! match process.runtime().deliver(origin, &Event::new("hello")) {
//!     Ok(outputs) => println!("{outputs:?}"),
//!     Err(DeliverError::HostedElsewhere { node_id, .. }) => println!("forward to node {node_id}"),
//!     Err(e) => return Err(e.into()),
//! }
//! process.leave();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - **Nodes.** A node process holds its [`NodeInfo`](crate::NodeInfo) under
//!   `<prefix>/nodes/<id>` with a lease it keeps alive ([`NodeMembership`]).
//!   The lease expiring is the node's failure, after a debounce window (see
//!   [`schema`]); a new lease for the same id is its recovery.
//! - **Groups.** Group intents (kind, sealed seed, replica count, strategy)
//!   live under `<prefix>/groups/<group id>`; [`ClusterRuntime::spawn_group`]
//!   writes one, [`ClusterRuntime::remove_group`] deletes it.
//! - **Order.** Every [`ClusterRuntime`] watches the prefix and feeds the
//!   events, strictly in revision order, to its own runtime's writer.
//!   Placement is deterministic, so all processes hold the same rosters at
//!   the same revision ([`ClusterStatus::digest`] checks it). A process hosts
//!   only the replicas placed on its own node; delivering to another is
//!   [`DeliverError::HostedElsewhere`](crate::DeliverError::HostedElsewhere).
//!   An observer ([`ClusterRuntime::observe`]) hosts nothing.
//! - **Checkpoints.** Each time the revision crosses a multiple of
//!   [`ClusterOptions::checkpoint_every`], every process takes a checkpoint
//!   of the state placement depends on at the previous event's revision (the
//!   writer's snapshot and the feed's node views and intents), encoded
//!   canonically. The node with the lowest live id writes it, sealed, under
//!   `<prefix>/checkpoints/<revision>` (put-if-absent, older ones deleted in
//!   the same transaction; any other process writes it if that node did not
//!   within a few seconds). Every other process compares it with its own
//!   digest at that revision and counts a match or a mismatch
//!   ([`FeedStats`]). A joining process restores the newest checkpoint and
//!   watches from the revision after it, so its join time is bounded by the
//!   state's size and `checkpoint_every`, not by the cluster's age, and it
//!   converges exactly even after etcd compacted the history (as long as
//!   the compaction keeps more than `checkpoint_every` revisions).
//! - **Secrets.** Seeds and checkpoints reach etcd only sealed under the
//!   cluster secret ([`ClusterOptions::with_secret`]), with XChaCha20-Poly1305
//!   bound to the record's key. A process that cannot open a record (no
//!   secret or the wrong one) applies nothing of it, and counts and logs it.
//! - **TLS and auth.** [`ClusterOptions::with_tls`],
//!   [`with_client_identity`](ClusterOptions::with_client_identity) and
//!   [`with_user`](ClusterOptions::with_user); a wrong CA, certificate or
//!   password is a typed [`ClusterError`] within the timeout.
//! - **Threads.** Each process runs its etcd client on a thread of its own
//!   (a small tokio runtime that never meets the caller's), and applies
//!   changes on another (the applier), fed by the watcher over a channel: a
//!   slow daemon factory delays neither the watch stream, the lease
//!   keep-alive, nor [`ClusterRuntime::status`]. The blocking API works
//!   from any thread, a tokio worker included; `*_async` twins do not block
//!   the executor; dropping any cluster value never panics.
//!
//! Routing is untouched: the same lock-free read of a roster snapshot.
//! tokio and the etcd client stay inside this module.
//!
//! Building this feature needs `protoc` (Debian: `protobuf-compiler`) for
//! `etcd-client`'s build script. The tests and the `cluster` example run a
//! vendored etcd on loopback (`LocalEtcd` in `crates/testkit`).

mod applier;
mod async_api;
mod checkpoint;
mod codec;
mod connection;
mod error;
mod feed;
mod history;
mod member;
mod options;
mod process;
mod published;
pub mod schema;
mod seal;
mod state;
mod status;
mod watcher;
mod write;

pub use error::ClusterError;
pub use member::NodeMembership;
pub use options::{ClusterOptions, ClusterSecret, Credentials, TlsMaterial};
pub use process::ClusterRuntime;
pub use status::{ClusterStatus, FeedStats};

/// A random-enough id of this process, to tell node claimers apart.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let material = format!("{}-{nanos}-{:p}", std::process::id(), &nanos);
    blake3::hash(material.as_bytes()).to_hex()[..16].to_owned()
}
