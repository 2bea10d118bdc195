//! What the cluster test files share: options, node processes (each test
//! binary re-executes itself as a node through its `cluster_node_process`
//! entry point), convergence checks, and raw etcd access.
#![allow(dead_code, unreachable_pub)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use replica_router::cluster::{ClusterOptions, ClusterRuntime};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::process::{report_status, ReportingProcess};
use replica_router_testkit::support::Echo;

/// The cluster secret of the tests.
pub const SECRET: [u8; 32] = [0x5e; 32];

pub fn register(rt: &DaemonRuntime) -> Result<(), RuntimeError> {
    rt.register_factory("echo", || Box::new(Echo))
}

/// Options with the test secret, `debounce_ms` and a checkpoint every
/// `checkpoint_every` revisions.
pub fn options_at(endpoint: &str, prefix: &str, debounce_ms: u64, every: i64) -> ClusterOptions {
    ClusterOptions::new(endpoint, prefix)
        .with_secret(SECRET)
        .with_debounce(Duration::from_millis(debounce_ms))
        .with_checkpoint_every(every)
}

pub fn options(etcd: &LocalEtcd, prefix: &str, debounce_ms: u64) -> ClusterOptions {
    options_at(&etcd.endpoint(), prefix, debounce_ms, 1_000)
}

/// The body of a node process: joins as told by its environment, then
/// reports until its stdin closes.
pub fn node_process_main() {
    let Ok(endpoint) = std::env::var("RR_ETCD") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let (prefix, node) = (var("RR_PREFIX"), var("RR_NODE").parse::<u64>().unwrap());
    let debounce = var("RR_DEBOUNCE_MS").parse().unwrap();
    let every = var("RR_CHECKPOINT_EVERY").parse().unwrap();
    let options = options_at(&endpoint, &prefix, debounce, every);
    let info = NodeInfo::new(node).with_zone(&format!("z{}", node % 2));
    let process = ClusterRuntime::join(options, info, register).expect("join");
    report_status(Duration::from_millis(20), || {
        let st = process.status();
        let f = &st.feed;
        vec![
            st.applied_revision.max(0) as u64,
            st.digest,
            f.events_applied,
            f.restored_from.max(0) as u64,
            f.checkpoints_verified,
            f.checkpoint_mismatches,
        ]
    });
}

/// What a node process reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub revision: i64,
    pub digest: u64,
    pub applied: u64,
    pub restored_from: i64,
    pub verified: u64,
    pub mismatches: u64,
}

/// A node process.
pub struct Node {
    pub id: u64,
    process: ReportingProcess,
}

impl Node {
    pub fn start(etcd: &LocalEtcd, prefix: &str, id: u64, debounce_ms: u64) -> Node {
        Self::start_with(etcd, prefix, id, debounce_ms, 1_000)
    }

    pub fn start_with(
        etcd: &LocalEtcd,
        prefix: &str,
        id: u64,
        debounce_ms: u64,
        every: i64,
    ) -> Node {
        let process = ReportingProcess::start(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "cluster_node_process",
                    "--ignored",
                    "--nocapture",
                ])
                .args(["--test-threads=1"])
                .env("RR_ETCD", etcd.endpoint())
                .env("RR_PREFIX", prefix)
                .env("RR_NODE", id.to_string())
                .env("RR_DEBOUNCE_MS", debounce_ms.to_string())
                .env("RR_CHECKPOINT_EVERY", every.to_string())
                .stderr(Stdio::null()),
        )
        .unwrap();
        Node { id, process }
    }

    pub fn status(&self) -> Option<Status> {
        let [revision, digest, applied, restored_from, verified, mismatches] =
            self.process.last_array()?;
        Some(Status {
            revision: revision as i64,
            digest,
            applied,
            restored_from: restored_from as i64,
            verified,
            mismatches,
        })
    }

    /// SIGKILL: no lease revoke, no goodbye.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// Every node process and the observer at etcd's revision, with one digest.
pub fn converged(observer: &ClusterRuntime, nodes: &[&Node]) -> bool {
    let Ok(now) = observer.etcd_revision() else {
        return false;
    };
    observer.wait_for_revision(now, Duration::from_millis(200));
    let mine = observer.status();
    mine.applied_revision == now
        && nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.revision == now && s.digest == mine.digest)
        })
}

/// `count` node processes and an observer on `prefix`, returned once a
/// first group (`seed`, `replicas`, `strategy`) could be spawned: once
/// enough nodes have joined.
pub fn nodes_with_first_group(
    etcd: &LocalEtcd,
    prefix: &str,
    count: u64,
    debounce_ms: u64,
    seed: [u8; 32],
    replicas: u8,
    strategy: Strategy,
) -> (Vec<Node>, ClusterRuntime) {
    let nodes = (1..=count)
        .map(|id| Node::start(etcd, prefix, id, debounce_ms))
        .collect();
    let observer = ClusterRuntime::observe(options(etcd, prefix, debounce_ms), register).unwrap();
    replica_router_testkit::support::eventually(20, "nodes joined", || {
        observer
            .spawn_group("echo", seed, replicas, strategy)
            .is_ok()
    });
    (nodes, observer)
}

pub fn spawn_groups(observer: &ClusterRuntime, n: u8, replicas: u8) -> Vec<Arc<ReplicaGroup>> {
    (0..n)
        .map(|g| {
            let strategy = Strategy::ALL[g as usize % Strategy::ALL.len()];
            observer
                .spawn_group("echo", [g + 1; 32], replicas, strategy)
                .unwrap()
        })
        .collect()
}

pub fn group_id_of(seed: [u8; 32]) -> u32 {
    u32::from_le_bytes(blake3::hash(&seed).as_bytes()[..4].try_into().unwrap())
}

/// Runs `f` with a raw etcd client (no TLS), on a runtime of its own.
pub fn with_etcd<T, Fut>(endpoint: &str, f: impl FnOnce(etcd_client::Client) -> Fut) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = etcd_client::Client::connect([endpoint], None)
            .await
            .unwrap();
        f(client).await
    })
}

/// Compacts etcd's history, keeping the last `keep` revisions, as etcd's
/// `--auto-compaction-mode revision --auto-compaction-retention <keep>`
/// does (every five minutes there; at once here). Returns the compaction
/// revision.
pub fn compact_keeping(endpoint: &str, keep: i64) -> i64 {
    with_etcd(endpoint, |mut c| async move {
        let now = c.get("/", None).await.unwrap().header().unwrap().revision();
        let at = (now - keep).max(1);
        c.compact(
            at,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .unwrap();
        at
    })
}
