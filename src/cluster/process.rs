//! ClusterRuntime: one router process of a cluster, its runtime fed by etcd.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::GetOptions;

use super::applier;
use super::connection::{classify, Connection};
use super::error::ClusterError;
use super::feed::Feed;
use super::instance_id;
use super::member::NodeMembership;
use super::options::ClusterOptions;
use super::published::{Published, APPLY_TIMEOUT};
use super::schema::{encode_intent, group_key, Intent};
use super::status::ClusterStatus;
use super::watcher::Watcher;
use super::write::Write;
use crate::identity::group_id_of;
use crate::{DaemonRuntime, NodeInfo, ReplicaGroup, RuntimeError, Strategy};

/// One router process of a cluster: a runtime whose nodes and groups come
/// from etcd, in revision order.
///
/// Every method works from any thread, a tokio worker included (the etcd
/// client lives on a thread of this crate's own), and dropping it never
/// panics. The async twins (`join_async`, ...) do the same without
/// blocking the caller's executor.
///
/// ```no_run
/// use replica_router::cluster::{ClusterOptions, ClusterRuntime};
/// use replica_router::*;
/// # struct Echo;
/// # impl MeshDaemon for Echo {
/// #     fn name(&self) -> &str { "echo" }
/// #     fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> { Ok(vec![]) }
/// # }
/// let options = ClusterOptions::new("http://127.0.0.1:2379", "/replica-router")
///     .with_secret([42; 32]); // the same secret in every process, from out of band
/// let process = ClusterRuntime::join(options, NodeInfo::new(1).with_zone("a"), |rt| {
///     rt.register_factory("echo", || Box::new(Echo))
/// })?;
/// let group = process.spawn_group("echo", [7; 32], 3, Strategy::RoundRobin)?;
/// let origin = group.route_event(&RequestContext::new())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClusterRuntime {
    pub(crate) inner: Arc<Inner>,
    membership: Option<NodeMembership>,
}

/// What the API and its async twins share.
pub(crate) struct Inner {
    pub(crate) runtime: DaemonRuntime,
    pub(crate) options: ClusterOptions,
    pub(crate) connection: Connection,
    published: Arc<Published>,
}

impl std::fmt::Debug for ClusterRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRuntime")
            .field("prefix", &self.inner.options.prefix)
            .field("membership", &self.membership)
            .field("status", &self.inner.published.status())
            .finish_non_exhaustive()
    }
}

impl ClusterRuntime {
    /// Joins as node `node`: registers the factories with `register`, starts
    /// from the newest checkpoint, follows etcd until caught up, and claims
    /// the node id (see [`NodeMembership::claim`]). This process then hosts
    /// the replicas placed on `node`.
    pub fn join(
        options: ClusterOptions,
        node: NodeInfo,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        let instance = instance_id();
        let runtime = DaemonRuntime::for_node(node.id(), []);
        let local = Some((node.id(), instance.clone()));
        let mut process = Self::follow(options, runtime, local, register)?;
        process.membership = Some(NodeMembership::claim_as(
            &process.inner.options,
            &node,
            &instance,
        )?);
        Ok(process)
    }

    /// Follows the cluster without being a node: routes to every replica
    /// and hosts none (every delivery is `HostedElsewhere`).
    pub fn observe(
        options: ClusterOptions,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        Self::follow(options, DaemonRuntime::observer([]), None, register)
    }

    fn follow(
        options: ClusterOptions,
        runtime: DaemonRuntime,
        local: Option<(u64, String)>,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError>,
    ) -> Result<ClusterRuntime, ClusterError> {
        options.check()?;
        register(&runtime).map_err(|e| ClusterError::Refused(e.to_string()))?;
        runtime
            .start()
            .map_err(|e| ClusterError::Refused(e.to_string()))?;
        let connection = Connection::open(&options, "replica-router-watch")?;
        let published = Arc::new(Published::default());
        let (feed_tx, feed_rx) = crossbeam_channel::unbounded();
        let feed = Feed::new(runtime.clone(), &options, local, Arc::clone(&published));
        let jobs = connection.jobs().clone();
        applier::spawn(feed, feed_rx, Arc::clone(&published), jobs, options.clone())
            .map_err(|e| ClusterError::Etcd(format!("cannot start the feed thread: {e}")))?;
        let watcher = Watcher {
            options: options.clone(),
            feed: feed_tx,
            published: Arc::clone(&published),
        };
        let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
        connection
            .jobs()
            .spawn(move |client| watcher.run(client, started_tx))?;
        let inner = Inner {
            runtime,
            options,
            connection,
            published,
        };
        started_rx
            .recv_timeout(super::watcher::START_PATIENCE + inner.options.timeout * 2)
            .unwrap_or(Err(ClusterError::Closed))?;
        // Catch up with what etcd holds now before answering anything.
        let now = inner.etcd_revision()?;
        if !inner.wait_for_revision(now, APPLY_TIMEOUT) {
            return Err(ClusterError::NotApplied {
                revision: now,
                waited: APPLY_TIMEOUT,
            });
        }
        Ok(ClusterRuntime {
            inner: Arc::new(inner),
            membership: None,
        })
    }

    /// The runtime: deliver events to the replicas hosted here with it.
    pub fn runtime(&self) -> &DaemonRuntime {
        &self.inner.runtime
    }

    /// etcd's current revision.
    pub fn etcd_revision(&self) -> Result<i64, ClusterError> {
        self.inner.etcd_revision()
    }

    /// Blocks until this process applied every change up to `revision`;
    /// `false` on timeout.
    pub fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        self.inner.wait_for_revision(revision, timeout)
    }

    /// Writes a group intent (its seed sealed under the cluster secret) and
    /// returns the group once this process applied it. Every process of the
    /// cluster spawns the same group. Without a secret,
    /// [`ClusterError::NoSecret`].
    pub fn spawn_group(
        &self,
        kind: &str,
        seed: [u8; 32],
        replica_count: u8,
        strategy: Strategy,
    ) -> Result<Arc<ReplicaGroup>, ClusterError> {
        let (group_id, write) = self
            .inner
            .intent_write(kind, seed, replica_count, strategy)?;
        self.inner.write(write)?;
        self.inner.spawned(group_id)
    }

    /// Rescales group `group_id` in every process.
    pub fn scale_group(&self, group_id: u32, replica_count: u8) -> Result<(), ClusterError> {
        self.inner
            .write(self.inner.scale_write(group_id, replica_count)?)?;
        self.inner.scaled(group_id, replica_count)
    }

    /// Removes group `group_id` in every process: deletes its intent, and
    /// every process removes the group ([`ReplicaGroup::remove`]) at the
    /// revision of the delete.
    pub fn remove_group(&self, group_id: u32) -> Result<(), ClusterError> {
        self.inner.write(self.inner.remove_write(group_id)?)
    }

    /// The group with this id, if the cluster has it.
    pub fn group(&self, group_id: u32) -> Option<Arc<ReplicaGroup>> {
        self.inner.published.group(group_id)
    }

    /// Every group of the cluster, in group id order.
    pub fn groups(&self) -> Vec<Arc<ReplicaGroup>> {
        self.inner.published.groups()
    }

    /// The last applied revision and the roster digest there, taken
    /// together. Never waits for the writer.
    pub fn status(&self) -> ClusterStatus {
        self.inner.published.status()
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
        // Leave first (the lease is revoked), then stop following: the
        // last holder of `inner` (an async call in flight may hold one)
        // closes the connection and shuts the runtime down.
        drop(self.membership.take());
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.connection.close(
            None::<fn(etcd_client::Client) -> std::future::Ready<()>>,
            Duration::from_secs(2),
        );
        self.runtime.shutdown();
    }
}

impl Inner {
    pub(crate) fn etcd_revision(&self) -> Result<i64, ClusterError> {
        let options = self.options.clone();
        self.connection.jobs().call(move |mut client| async move {
            let response = client
                .get(
                    options.prefix.as_bytes(),
                    Some(GetOptions::new().with_count_only()),
                )
                .await
                .map_err(|e| classify(&options, &e))?;
            Ok(response.header().map_or(0, |h| h.revision()))
        })
    }

    pub(crate) fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        self.published.wait_for(revision, timeout)
    }

    /// The write of a new group's intent, checked and sealed.
    pub(crate) fn intent_write(
        &self,
        kind: &str,
        seed: [u8; 32],
        replica_count: u8,
        strategy: Strategy,
    ) -> Result<(u32, Write), ClusterError> {
        if replica_count == 0 {
            return Err(ClusterError::Refused(
                "invalid config: replica_count must be at least 1".into(),
            ));
        }
        let group_id = group_id_of(&seed);
        let intent = Intent {
            kind: kind.to_owned(),
            seed,
            replica_count,
            strategy,
        };
        Ok((group_id, self.sealed(group_id, &intent)?))
    }

    /// The write that rescales group `group_id`.
    pub(crate) fn scale_write(
        &self,
        group_id: u32,
        replica_count: u8,
    ) -> Result<Write, ClusterError> {
        let intent = self
            .published
            .intent(group_id)
            .ok_or(ClusterError::UnknownGroup(group_id))?;
        self.sealed(
            group_id,
            &Intent {
                replica_count,
                ..intent
            },
        )
    }

    /// The write that removes group `group_id`.
    pub(crate) fn remove_write(&self, group_id: u32) -> Result<Write, ClusterError> {
        if self.published.group(group_id).is_none() {
            return Err(ClusterError::UnknownGroup(group_id));
        }
        Ok(Write {
            key: group_key(&self.options.prefix, group_id),
            value: None,
        })
    }

    fn sealed(&self, group_id: u32, intent: &Intent) -> Result<Write, ClusterError> {
        let secret = self.options.secret.as_ref().ok_or(ClusterError::NoSecret)?;
        let key = group_key(&self.options.prefix, group_id);
        let value = encode_intent(secret, &key, intent);
        Ok(Write {
            key,
            value: Some(value),
        })
    }

    /// The group `group_id` once its intent was applied.
    pub(crate) fn spawned(&self, group_id: u32) -> Result<Arc<ReplicaGroup>, ClusterError> {
        self.published
            .group(group_id)
            .ok_or_else(|| self.refusal(group_id, "group not spawned"))
    }

    /// Whether group `group_id` has `replica_count` replicas after its
    /// rescale was applied.
    pub(crate) fn scaled(&self, group_id: u32, replica_count: u8) -> Result<(), ClusterError> {
        match self.published.group(group_id) {
            Some(group) if group.replica_count() == replica_count => Ok(()),
            Some(_) => Err(self.refusal(group_id, "not rescaled")),
            None => Err(ClusterError::UnknownGroup(group_id)),
        }
    }

    /// Writes and waits until this process applied the write, blocking.
    pub(crate) fn write(&self, write: Write) -> Result<(), ClusterError> {
        let (options, published) = (self.options.clone(), Arc::clone(&self.published));
        let within = APPLY_TIMEOUT + self.options.timeout;
        self.connection.jobs().call_within(within, move |client| {
            write.apply(client, options, published)
        })
    }

    /// Writes and awaits until this process applied the write.
    pub(crate) async fn write_async(&self, write: Write) -> Result<(), ClusterError> {
        let (options, published) = (self.options.clone(), Arc::clone(&self.published));
        let within = APPLY_TIMEOUT + self.options.timeout;
        self.connection
            .jobs()
            .call_within_async(within, move |client| {
                write.apply(client, options, published)
            })
            .await
    }

    fn refusal(&self, group_id: u32, otherwise: &str) -> ClusterError {
        ClusterError::Refused(
            self.published
                .rejection(group_id)
                .unwrap_or_else(|| otherwise.to_owned()),
        )
    }
}
