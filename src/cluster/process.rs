//! ClusterRuntime: one router process of a cluster, its runtime fed by etcd.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::feed::{Feed, FeedStats};
use super::member::NodeMembership;
use super::schema::{group_key, GroupIntent};
use super::shared::Shared;
use super::{connect, instance_id, tokio_runtime, watcher, ClusterError, ClusterOptions};
use crate::identity::group_id_of;
use crate::{DaemonRuntime, NodeInfo, ReplicaGroup, RuntimeError, Strategy};

/// How long `spawn_group` and `scale_group` wait for their own change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a process stands: the last revision it applied and a digest of its
/// rosters at that revision. Processes at the same revision must have equal
/// digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The revision up to which every change was applied.
    pub applied_revision: i64,
    /// [`DaemonRuntime::roster_digest`] at that revision.
    pub digest: u64,
    /// What the feed did.
    pub feed: FeedStats,
    /// Times the watcher reconnected to etcd.
    pub reconnects: u64,
}

/// One router process of a cluster: a runtime whose nodes and groups come
/// from etcd, in revision order.
///
/// ```no_run
/// use replica_router::cluster::{ClusterOptions, ClusterRuntime};
/// use replica_router::*;
/// # struct Echo;
/// # impl MeshDaemon for Echo {
/// #     fn name(&self) -> &str { "echo" }
/// #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![]) }
/// # }
/// let options = ClusterOptions::new("http://127.0.0.1:2379", "/replica-router");
/// let process = ClusterRuntime::join(options, NodeInfo::new(1).with_zone("a"), |rt| {
///     rt.register_factory("echo", || Box::new(Echo))
/// })?;
/// let group = process.spawn_group("echo", [7; 32], 3, Strategy::RoundRobin)?;
/// let origin = group.route_event(&RequestContext::new())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClusterRuntime {
    runtime: DaemonRuntime,
    shared: Arc<Shared>,
    options: ClusterOptions,
    client: etcd_client::Client,
    stop: watch::Sender<bool>,
    membership: Option<NodeMembership>,
    tokio: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("prefix", &self.options.prefix)
            .field("membership", &self.membership)
            .field("feed", &self.shared.feed.lock().stats)
            .finish_non_exhaustive()
    }
}

impl ClusterRuntime {
    /// Joins as node `node`: registers the factories with `register`, starts
    /// following etcd, and claims the node id (see [`NodeMembership::claim`]).
    /// This process then hosts the replicas placed on `node`.
    pub fn join(
        options: ClusterOptions,
        node: NodeInfo,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        let instance = instance_id();
        let runtime = DaemonRuntime::for_node(node.id(), []);
        let mut process = Self::follow(
            options,
            runtime,
            Some((node.id(), instance.clone())),
            register,
        )?;
        process.membership = Some(NodeMembership::claim_as(
            &process.options,
            &node,
            &instance,
        )?);
        Ok(process)
    }

    /// Follows the cluster without being a node: routes to every replica and
    /// hosts none (every delivery is `HostedElsewhere`).
    pub fn observe(
        options: ClusterOptions,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        // No node has id u64::MAX here, so this runtime hosts nothing.
        let runtime = DaemonRuntime::for_node(u64::MAX, []);
        Self::follow(options, runtime, None, register)
    }

    fn follow(
        options: ClusterOptions,
        runtime: DaemonRuntime,
        local: Option<(u64, String)>,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        if options.prefix.is_empty() {
            return Err(ClusterError::InvalidOptions(
                "the prefix must not be empty".into(),
            ));
        }
        register(&runtime).map_err(|e| ClusterError::Refused(e.to_string()))?;
        runtime
            .start()
            .map_err(|e| ClusterError::Refused(e.to_string()))?;
        let tokio = tokio_runtime("replica-router-watch")?;
        let client = tokio.block_on(connect(&options))?;
        let shared = Arc::new(Shared {
            feed: Mutex::new(Feed::new(runtime.clone(), &options.prefix, local)),
            applied: Condvar::new(),
            caught_up: AtomicI64::new(0),
            progress_wanted: tokio::sync::Notify::new(),
            reconnects: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        tokio.spawn(watcher::run(options.clone(), Arc::clone(&shared), stopped));
        let process = ClusterRuntime {
            runtime,
            shared,
            options,
            client,
            stop,
            membership: None,
            tokio: Some(tokio),
        };
        // Catch up with what etcd holds now before answering anything.
        let now = process.etcd_revision()?;
        if !process.wait_for_revision(now, APPLY_TIMEOUT) {
            return Err(ClusterError::NotApplied {
                revision: now,
                waited: APPLY_TIMEOUT,
            });
        }
        Ok(process)
    }

    /// The runtime: deliver events to the replicas hosted here with it.
    pub fn runtime(&self) -> &DaemonRuntime {
        &self.runtime
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.tokio
            .as_ref()
            .expect("runtime lives until drop")
            .block_on(f)
    }

    /// etcd's current revision.
    pub fn etcd_revision(&self) -> Result<i64, ClusterError> {
        let mut client = self.client.clone();
        let response = self
            .block_on(async {
                tokio::time::timeout(
                    self.options.timeout,
                    client.get(self.options.prefix.as_bytes(), None),
                )
                .await
            })
            .map_err(|_| {
                ClusterError::Etcd(format!("no answer within {:?}", self.options.timeout))
            })?
            .map_err(|e| ClusterError::Etcd(e.to_string()))?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    /// Blocks until this process applied every change up to `revision`;
    /// `false` on timeout.
    pub fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut feed = self.shared.feed.lock();
        while self.shared.caught_up() < revision {
            // No event may be due (the revision moved outside the prefix):
            // ask etcd to vouch for the revision.
            self.shared.progress_wanted.notify_one();
            let wake = (Instant::now() + Duration::from_millis(50)).min(deadline);
            let _ = self.shared.applied.wait_until(&mut feed, wake);
            if Instant::now() >= deadline {
                return self.shared.caught_up() >= revision;
            }
        }
        true
    }

    /// Writes a group intent and returns the group once this process applied
    /// it. Every process of the cluster spawns the same group.
    pub fn spawn_group(
        &self,
        kind: &str,
        seed: [u8; 32],
        replica_count: u8,
        strategy: Strategy,
    ) -> Result<Arc<ReplicaGroup>, ClusterError> {
        let group_id = group_id_of(&seed);
        self.put_intent(
            group_id,
            GroupIntent::new(kind, &seed, replica_count, strategy),
        )?;
        self.group(group_id).ok_or_else(|| {
            let feed = self.shared.feed.lock();
            ClusterError::Refused(
                feed.rejection(group_id)
                    .unwrap_or("group not spawned")
                    .to_owned(),
            )
        })
    }

    /// Rescales group `group_id` in every process.
    pub fn scale_group(&self, group_id: u32, replica_count: u8) -> Result<(), ClusterError> {
        let group = self.group(group_id).ok_or_else(|| {
            ClusterError::Refused(format!("no group {group_id:#010x} in this cluster"))
        })?;
        let intent = {
            let feed = self.shared.feed.lock();
            feed.intent(group_id)
        };
        let intent = intent.ok_or_else(|| {
            ClusterError::Refused(format!("no intent for group {group_id:#010x}"))
        })?;
        self.put_intent(
            group_id,
            GroupIntent {
                replica_count,
                ..intent
            },
        )?;
        if group.replica_count() == replica_count {
            Ok(())
        } else {
            let feed = self.shared.feed.lock();
            Err(ClusterError::Refused(
                feed.rejection(group_id)
                    .unwrap_or("not rescaled")
                    .to_owned(),
            ))
        }
    }

    fn put_intent(&self, group_id: u32, intent: GroupIntent) -> Result<(), ClusterError> {
        let value = serde_json::to_vec(&intent).map_err(|e| ClusterError::Etcd(e.to_string()))?;
        let key = group_key(&self.options.prefix, group_id);
        let mut client = self.client.clone();
        let response = self
            .block_on(async {
                tokio::time::timeout(self.options.timeout, client.put(key, value, None)).await
            })
            .map_err(|_| {
                ClusterError::Etcd(format!("no answer within {:?}", self.options.timeout))
            })?
            .map_err(|e| ClusterError::Etcd(e.to_string()))?;
        let revision = response.header().map_or(0, |h| h.revision());
        if self.wait_for_revision(revision, APPLY_TIMEOUT) {
            Ok(())
        } else {
            Err(ClusterError::NotApplied {
                revision,
                waited: APPLY_TIMEOUT,
            })
        }
    }

    /// The group with this id, if the cluster has it.
    pub fn group(&self, group_id: u32) -> Option<Arc<ReplicaGroup>> {
        self.shared.feed.lock().group(group_id)
    }

    /// Every group of the cluster, in group id order.
    pub fn groups(&self) -> Vec<Arc<ReplicaGroup>> {
        self.shared.feed.lock().groups()
    }

    /// The last applied revision and the roster digest there, taken together.
    pub fn status(&self) -> ClusterStatus {
        let feed = self.shared.feed.lock();
        ClusterStatus {
            applied_revision: self.shared.caught_up().max(feed.stats.applied_revision),
            digest: self.runtime.roster_digest().unwrap_or(0),
            feed: feed.stats.clone(),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
        }
    }

    /// The node membership, when this process is a node.
    pub fn membership(&self) -> Option<&NodeMembership> {
        self.membership.as_ref()
    }

    /// Leaves the cluster: revokes the node's lease (its replicas fail over
    /// elsewhere), stops following etcd, and shuts the runtime down.
    pub fn leave(self) {}
}

impl Drop for ClusterRuntime {
    fn drop(&mut self) {
        drop(self.membership.take());
        let _ = self.stop.send(true);
        if let Some(tokio) = self.tokio.take() {
            tokio.shutdown_timeout(Duration::from_secs(2));
        }
        self.runtime.shutdown();
    }
}
