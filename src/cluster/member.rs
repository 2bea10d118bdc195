//! A node's membership: its record under a lease that is kept alive.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};

use super::connection::{classify, Connection};
use super::error::ClusterError;
use super::instance_id;
use super::options::ClusterOptions;
use super::schema::{decode_node, node_key, NodeRecord};
use crate::NodeInfo;

/// Keeps one node registered: its [`NodeRecord`] under
/// `<prefix>/nodes/<id>`, attached to a lease a task of this crate's own
/// connection thread keeps alive (re-registering if the lease was lost,
/// e.g. etcd was down longer than the TTL). Dropping it leaves the cluster
/// (revokes the lease); that never panics, in an async context or not.
pub struct NodeMembership {
    node_id: u64,
    instance: String,
    lease: Arc<AtomicI64>,
    connection: Option<Connection>,
}

impl std::fmt::Debug for NodeMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMembership")
            .field("node_id", &self.node_id)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The lease TTL in etcd's whole seconds (at least 1).
fn ttl_seconds(ttl: Duration) -> i64 {
    (ttl.as_secs_f64().ceil() as i64).max(1)
}

impl NodeMembership {
    /// Registers `node`. If another process holds the id, waits up to one
    /// TTL (plus a second) for its lease to expire, as after that process
    /// crashed; if it is still held, [`ClusterError::DuplicateNode`].
    pub fn claim(
        options: &ClusterOptions,
        node: &NodeInfo,
    ) -> Result<NodeMembership, ClusterError> {
        Self::claim_as(options, node, &instance_id())
    }

    pub(crate) fn claim_as(
        options: &ClusterOptions,
        node: &NodeInfo,
        instance: &str,
    ) -> Result<NodeMembership, ClusterError> {
        let connection = Connection::open(options, "replica-router-lease")?;
        let value = NodeRecord::new(node, instance).to_json();
        let key = node_key(&options.prefix, node.id());
        let (opts, k, v, id) = (options.clone(), key.clone(), value.clone(), node.id());
        let patience = options.lease_ttl + options.timeout + Duration::from_secs(1);
        let lease = connection
            .jobs()
            .call_within(patience, move |mut client| async move {
                register(&mut client, &opts, &k, &v, id).await
            })?;
        let lease = Arc::new(AtomicI64::new(lease));
        let (opts, held) = (options.clone(), Arc::clone(&lease));
        let id = node.id();
        connection
            .jobs()
            .spawn(move |client| keep_alive(client, opts, key, value, id, held))?;
        tracing::info!(node = node.id(), instance, "node registered");
        Ok(NodeMembership {
            node_id: node.id(),
            instance: instance.to_owned(),
            lease,
            connection: Some(connection),
        })
    }

    /// The node id held.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// This process's instance id, as written in the node record.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Leaves the cluster now: the lease is revoked and the key deleted.
    pub fn leave(mut self) {
        self.end(true);
    }

    /// Stops keeping the lease alive without revoking it: the key vanishes
    /// when the lease expires, exactly as if this process had crashed.
    pub fn abandon(mut self) {
        self.end(false);
    }

    fn end(&mut self, revoke: bool) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let lease = self.lease.load(Ordering::Acquire);
        let last = revoke.then_some(move |mut client: Client| async move {
            let _ = client.lease_revoke(lease).await;
        });
        connection.close(last, Duration::from_secs(3));
    }
}

impl Drop for NodeMembership {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// Grants a lease and puts the record under it, waiting out a previous
/// holder's lease. Returns the lease id.
async fn register(
    client: &mut Client,
    options: &ClusterOptions,
    key: &str,
    value: &[u8],
    node_id: u64,
) -> Result<i64, ClusterError> {
    let etcd = |e: etcd_client::Error| classify(options, &e);
    let deadline = Instant::now() + options.lease_ttl + Duration::from_secs(1);
    loop {
        // A fresh lease per attempt: one granted before a wait would expire
        // while a previous holder's lease runs out.
        let lease = client
            .lease_grant(ttl_seconds(options.lease_ttl), None)
            .await
            .map_err(etcd)?
            .id();
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = client.txn(txn).await.map_err(etcd)?;
        if response.succeeded() {
            return Ok(lease);
        }
        let _ = client.lease_revoke(lease).await;
        if Instant::now() > deadline {
            let holder = client
                .get(key, None)
                .await
                .ok()
                .and_then(|r| r.kvs().first().map(|kv| kv.value().to_vec()))
                .and_then(|v| decode_node(&v).ok())
                .map_or_else(|| "unknown".to_owned(), |r| r.instance);
            return Err(ClusterError::DuplicateNode { node_id, holder });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps the lease alive every third of the TTL; re-registers if the lease
/// was lost. Ends when the connection closes.
async fn keep_alive(
    mut client: Client,
    options: ClusterOptions,
    key: String,
    value: Vec<u8>,
    node_id: u64,
    lease: Arc<AtomicI64>,
) {
    let period = (options.lease_ttl / 3).max(Duration::from_millis(100));
    loop {
        let id = lease.load(Ordering::Acquire);
        let beat = async {
            let (mut keeper, mut responses) = client.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            let ttl = responses.message().await?.map_or(0, |r| r.ttl());
            Ok::<i64, etcd_client::Error>(ttl)
        };
        match tokio::time::timeout(options.timeout, beat).await {
            Ok(Ok(ttl)) if ttl > 0 => {}
            Ok(Ok(_)) => {
                // The lease expired (e.g. etcd was away longer than the TTL):
                // register again; the feed sees a failure and a recovery.
                tracing::warn!(node = node_id, "lease lost; registering again");
                if let Ok(new) = register(&mut client, &options, &key, &value, node_id).await {
                    lease.store(new, Ordering::Release);
                }
            }
            Ok(Err(e)) => tracing::warn!(node = node_id, %e, "lease keep-alive failed; retrying"),
            Err(_) => tracing::warn!(node = node_id, "lease keep-alive timed out; retrying"),
        }
        tokio::time::sleep(period).await;
    }
}
