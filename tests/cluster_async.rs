//! Cluster mode in async programs (issue 14, points 4 and 5): the blocking
//! API works on a tokio worker (multi-thread and current-thread runtimes),
//! the async twins do not block the executor, dropping cluster values in a
//! runtime never panics, and a slow factory stalls neither `status()`, the
//! watch stream nor the lease keep-alive.

mod cluster_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::*;
use replica_router::cluster::{ClusterRuntime, NodeMembership};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::support::*;

/// join, spawn, scale, status, remove and leave, all blocking, from inside
/// an async fn.
fn blocking_round_trip(etcd: &LocalEtcd, prefix: &str) {
    let others: Vec<NodeMembership> = (2..=3)
        .map(|id| NodeMembership::claim(&options(etcd, prefix, 0), &NodeInfo::new(id)).unwrap())
        .collect();
    let node = ClusterRuntime::join(options(etcd, prefix, 0), NodeInfo::new(1), register).unwrap();
    let group = node
        .spawn_group("echo", [1; 32], 3, Strategy::RoundRobin)
        .unwrap();
    node.scale_group(group.group_id(), 2).unwrap();
    assert_eq!(group.replica_count(), 2);
    let status = node.status();
    assert!(status.applied_revision > 0);
    node.remove_group(group.group_id()).unwrap();
    node.leave();
    drop(others);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_api_works_on_a_multi_thread_runtime_worker() {
    let etcd = LocalEtcd::start().unwrap();
    blocking_round_trip(&etcd, "/multi");
}

#[tokio::test(flavor = "current_thread")]
async fn the_blocking_api_works_on_a_current_thread_runtime() {
    let etcd = LocalEtcd::start().unwrap();
    blocking_round_trip(&etcd, "/current");
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_twins_work_without_blocking_the_executor() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/twins";
    let options = options(&etcd, prefix, 0);
    let (a, b) = tokio::join!(
        ClusterRuntime::join_async(options.clone(), NodeInfo::new(1), register),
        ClusterRuntime::join_async(options.clone(), NodeInfo::new(2), register),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let observer = ClusterRuntime::observe_async(options, register)
        .await
        .unwrap();
    // While a call is awaited, the executor keeps running other tasks.
    let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ticking = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let group = observer
        .spawn_group_async("echo", [2; 32], 2, Strategy::LeastLoad)
        .await
        .unwrap();
    observer
        .scale_group_async(group.group_id(), 1)
        .await
        .unwrap();
    assert_eq!(group.replica_count(), 1);
    observer.remove_group_async(group.group_id()).await.unwrap();
    ticking.abort();
    assert!(ticks.load(Ordering::Relaxed) > 0);
    // Dropped inside the runtime: no panic.
    drop((a, b, observer));
}

#[test]
fn dropping_cluster_values_inside_a_runtime_never_panics() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/drop";
    let membership = NodeMembership::claim(&options(&etcd, prefix, 0), &NodeInfo::new(9)).unwrap();
    let node = ClusterRuntime::join(options(&etcd, prefix, 0), NodeInfo::new(1), register).unwrap();
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    for flavor in ["multi", "current"] {
        let rt = match flavor {
            "multi" => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
            _ => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .unwrap();
        match flavor {
            "multi" => rt.block_on(async { drop(membership_and(&etcd, prefix)) }),
            _ => rt.block_on(async { drop(membership_and(&etcd, prefix)) }),
        }
    }
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async move {
            drop(membership);
            drop(node);
            drop(observer);
        });
}

/// A membership and a process, made outside any runtime's worker.
fn membership_and(etcd: &LocalEtcd, prefix: &str) -> (NodeMembership, ClusterRuntime) {
    let m = NodeMembership::claim(&options(etcd, prefix, 0), &NodeInfo::new(7)).unwrap();
    let p = ClusterRuntime::observe(options(etcd, prefix, 0), register).unwrap();
    (m, p)
}

static SLOW: AtomicBool = AtomicBool::new(false);

fn slow_register(rt: &DaemonRuntime) -> Result<(), RuntimeError> {
    rt.register_factory("slow", || {
        if SLOW.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2_500));
        }
        Box::new(Echo)
    })
}

#[test]
fn a_slow_factory_stalls_neither_status_nor_the_watch_nor_the_lease() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/slow";
    let others: Vec<NodeMembership> = (2..=3)
        .map(|id| NodeMembership::claim(&options(&etcd, prefix, 0), &NodeInfo::new(id)).unwrap())
        .collect();
    let node = Arc::new(
        ClusterRuntime::join(options(&etcd, prefix, 0), NodeInfo::new(1), slow_register).unwrap(),
    );
    let watcher = ClusterRuntime::observe(options(&etcd, prefix, 0), slow_register).unwrap();
    SLOW.store(true, Ordering::SeqCst);
    let spawning = {
        let node = Arc::clone(&node);
        std::thread::spawn(move || node.spawn_group("slow", [3; 32], 3, Strategy::RoundRobin))
    };
    // While the node's factory sleeps, its status answers at once, and the
    // rest of the cluster goes on (its lease is kept alive: longer than the
    // 1 s TTL, no failure).
    std::thread::sleep(Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_millis(2_000);
    while Instant::now() < deadline {
        let asked = Instant::now();
        let _ = node.status();
        assert!(
            asked.elapsed() < Duration::from_millis(50),
            "status took {:?}",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    SLOW.store(false, Ordering::SeqCst);
    let group = spawning.join().unwrap().unwrap();
    assert!(group.replicas().iter().any(|m| m.node_id == 1));
    std::thread::sleep(Duration::from_millis(500));
    let now = watcher.etcd_revision().unwrap();
    assert!(node.wait_for_revision(now, Duration::from_secs(5)));
    let seen = watcher.group(group.group_id()).unwrap();
    assert!(
        seen.replicas().iter().all(|m| m.healthy),
        "node 1 never failed"
    );
    assert_eq!(node.status().reconnects, 0, "the watch stream never broke");
    assert_eq!(node.status().digest, watcher.status().digest);
    drop(others);
}
