//! A node's membership: its record under a lease that is kept alive.

use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::oneshot;

use super::schema::{node_key, NodeRecord};
use super::{connect, instance_id, tokio_runtime, ClusterError, ClusterOptions};
use crate::NodeInfo;

/// How a membership ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Revoke the lease: the key is deleted at once.
    Leave,
    /// Stop keeping the lease alive, as a crashed process would.
    Abandon,
}

/// Keeps one node registered: its [`NodeRecord`] under
/// `<prefix>/nodes/<id>`, attached to a lease a background task keeps alive
/// (re-registering if the lease was lost, e.g. etcd was down longer than the
/// TTL). Dropping it leaves the cluster (revokes the lease).
pub struct NodeMembership {
    node_id: u64,
    instance: String,
    stop: Option<oneshot::Sender<Ending>>,
    runtime: Option<tokio::runtime::Runtime>,
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
        let runtime = tokio_runtime("replica-router-lease")?;
        let record = NodeRecord::new(node, instance);
        let value = serde_json::to_vec(&record).map_err(|e| ClusterError::Etcd(e.to_string()))?;
        let key = node_key(&options.prefix, node.id());
        let (client, lease) = runtime.block_on(async {
            let mut client = connect(options).await?;
            let lease = register(&mut client, options, &key, &value, node.id()).await?;
            Ok::<_, ClusterError>((client, lease))
        })?;
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(keep_alive(
            client,
            options.clone(),
            key,
            value,
            node.id(),
            lease,
            stopped,
        ));
        tracing::info!(node = node.id(), instance, "node registered");
        Ok(NodeMembership {
            node_id: node.id(),
            instance: instance.to_owned(),
            stop: Some(stop),
            runtime: Some(runtime),
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
        self.end(Ending::Leave);
    }

    /// Stops keeping the lease alive without revoking it: the key vanishes
    /// when the lease expires, exactly as if this process had crashed.
    pub fn abandon(mut self) {
        self.end(Ending::Abandon);
    }

    fn end(&mut self, ending: Ending) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(ending);
        }
        if let Some(runtime) = self.runtime.take() {
            // Give the revoke a moment to reach etcd, then drop the task.
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for NodeMembership {
    fn drop(&mut self) {
        self.end(Ending::Leave);
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
    let etcd = |e: etcd_client::Error| ClusterError::Etcd(e.to_string());
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
                .and_then(|v| serde_json::from_slice::<NodeRecord>(&v).ok())
                .map_or_else(|| "unknown".to_owned(), |r| r.instance);
            return Err(ClusterError::DuplicateNode { node_id, holder });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps the lease alive every third of the TTL; reconnects after errors and
/// re-registers if the lease was lost. Ends as told.
async fn keep_alive(
    mut client: Client,
    options: ClusterOptions,
    key: String,
    value: Vec<u8>,
    node_id: u64,
    mut lease: i64,
    mut stop: oneshot::Receiver<Ending>,
) {
    let period = (options.lease_ttl / 3).max(Duration::from_millis(100));
    loop {
        let beat = async {
            let (mut keeper, mut responses) = client.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            let ttl = responses.message().await?.map_or(0, |r| r.ttl());
            Ok::<i64, etcd_client::Error>(ttl)
        };
        let outcome = tokio::select! {
            ending = &mut stop => {
                if ending.unwrap_or(Ending::Leave) == Ending::Leave {
                    let _ = client.lease_revoke(lease).await;
                }
                return;
            }
            outcome = tokio::time::timeout(options.timeout, beat) => outcome,
        };
        match outcome {
            Ok(Ok(ttl)) if ttl > 0 => {}
            Ok(Ok(_)) => {
                // The lease expired (e.g. etcd was away longer than the TTL):
                // register again; the feed sees a failure and a recovery.
                tracing::warn!(node = node_id, "lease lost; registering again");
                if let Ok(new) = register(&mut client, &options, &key, &value, node_id).await {
                    lease = new;
                }
            }
            _ => {
                if let Ok(fresh) = connect(&options).await {
                    client = fresh;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            ending = &mut stop => {
                if ending.unwrap_or(Ending::Leave) == Ending::Leave {
                    let _ = client.lease_revoke(lease).await;
                }
                return;
            }
        }
    }
}
