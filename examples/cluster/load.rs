//! Load for the harness: many simulated nodes under one lease, and groups
//! and rescales written many at a time through the async API.

use std::sync::Arc;
use std::time::Duration;

use replica_router::cluster::schema::NodeRecord;
use replica_router::cluster::ClusterRuntime;
use replica_router::{NodeInfo, Strategy};

use crate::zone;

/// A tokio runtime of the harness's own (the library keeps its own inside).
pub(crate) fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Node records written by this one process, under one lease it keeps
/// alive: nodes without a router process of their own.
pub(crate) struct SimulatedNodes {
    runtime: tokio::runtime::Runtime,
    pub(crate) count: u64,
}

impl SimulatedNodes {
    pub(crate) fn register(
        endpoint: &str,
        prefix: &str,
        ids: std::ops::Range<u64>,
    ) -> Option<Self> {
        let runtime = tokio();
        let count = ids.end - ids.start;
        let (endpoint, prefix) = (endpoint.to_owned(), prefix.to_owned());
        let registered = runtime.block_on(async move {
            let mut client = etcd_client::Client::connect([endpoint], None).await.ok()?;
            let lease = client.lease_grant(5, None).await.ok()?.id();
            for id in ids {
                let record = NodeRecord::new(&NodeInfo::new(id).with_zone(&zone(id)), "simulated");
                let put = etcd_client::PutOptions::new().with_lease(lease);
                let key = format!("{prefix}/nodes/{id}");
                client.put(key, record.to_json(), Some(put)).await.ok()?;
            }
            Some((client, lease))
        });
        let (mut client, lease) = registered?;
        runtime.spawn(async move {
            loop {
                if let Ok((mut keeper, mut stream)) = client.lease_keep_alive(lease).await {
                    let _ = keeper.keep_alive().await;
                    let _ = stream.message().await;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Some(SimulatedNodes { runtime, count })
    }
}

impl Drop for SimulatedNodes {
    fn drop(&mut self) {
        // The lease expires on its own; stop keeping it alive.
        let _ = &self.runtime;
    }
}

/// The seed of harness group `g`.
pub(crate) fn seed(g: u32) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&g.to_le_bytes());
    seed[4..8].copy_from_slice(&std::process::id().to_le_bytes());
    seed
}

/// Spawns `groups` groups, `parallel` at a time; returns how many spawned.
pub(crate) fn spawn_groups(observer: &Arc<ClusterRuntime>, groups: u32, replicas: u8) -> u32 {
    let calls = (0..groups).map(|g| {
        let observer = Arc::clone(observer);
        async move {
            let strategy = Strategy::ALL[g as usize % Strategy::ALL.len()];
            let spawned = observer
                .spawn_group_async("echo", seed(g), replicas, strategy)
                .await;
            if let Err(e) = &spawned {
                eprintln!("warning: group {g}: {e}");
            }
            spawned.is_ok()
        }
    });
    run_all(calls, 16).into_iter().filter(|ok| *ok).count() as u32
}

/// Writes `count` rescales straight to etcd, each a revision of its own,
/// `parallel` at a time, without waiting for any process to apply them:
/// each group alternates between 2 and 3 replicas. The stored records are
/// reused with their `replica_count` changed (the seed stays sealed, bound
/// to its key). Returns how many were written.
pub(crate) fn rescale(endpoint: &str, prefix: &str, count: u64) -> u64 {
    let (endpoint, prefix) = (endpoint.to_owned(), prefix.to_owned());
    tokio().block_on(async move {
        let Ok(mut client) = etcd_client::Client::connect([endpoint], None).await else {
            return 0;
        };
        let all = etcd_client::GetOptions::new().with_prefix();
        let Ok(stored) = client.get(format!("{prefix}/groups/"), Some(all)).await else {
            return 0;
        };
        let records: Vec<(Vec<u8>, serde_json::Value)> = stored
            .kvs()
            .iter()
            .filter_map(|kv| Some((kv.key().to_vec(), serde_json::from_slice(kv.value()).ok()?)))
            .collect();
        if records.is_empty() {
            return 0;
        }
        let mut set = tokio::task::JoinSet::new();
        let mut written = 0;
        for i in 0..count {
            let (key, record) = &records[i as usize % records.len()];
            let mut record = record.clone();
            record["replica_count"] = (2 + (i / records.len() as u64) % 2).into();
            let (mut c, key) = (client.clone(), key.clone());
            if set.len() >= 256 {
                written += u64::from(matches!(set.join_next().await, Some(Ok(true))));
            }
            set.spawn(async move { c.put(key, record.to_string(), None).await.is_ok() });
        }
        while let Some(r) = set.join_next().await {
            written += u64::from(matches!(r, Ok(true)));
        }
        written
    })
}

/// Runs the futures with at most `parallel` in flight.
fn run_all<F>(calls: impl Iterator<Item = F>, parallel: usize) -> Vec<bool>
where
    F: std::future::Future<Output = bool> + Send + 'static,
{
    tokio().block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        let mut results = Vec::new();
        for call in calls {
            if set.len() >= parallel {
                if let Some(r) = set.join_next().await {
                    results.push(r.unwrap_or(false));
                }
            }
            set.spawn(call);
        }
        while let Some(r) = set.join_next().await {
            results.push(r.unwrap_or(false));
        }
        results
    })
}
