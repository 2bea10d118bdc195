//! Shared helpers for the integration tests: small daemons, a runtime builder
//! and a config builder.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use replica_router::*;

/// Returns the payload it was given.
#[derive(Debug, Default)]
pub(crate) struct Echo;

impl MeshDaemon for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
}

/// Counts processed events in a shared counter.
#[derive(Debug)]
pub(crate) struct Counting(pub(crate) Arc<AtomicUsize>);

impl MeshDaemon for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(vec![event.payload().clone()])
    }
}

/// Fails on demand: payload `fail` returns `ProcessFailed`, payload `panic`
/// panics, anything else is echoed. While the shared switch is on, every
/// event fails.
#[derive(Debug, Default)]
pub(crate) struct Flaky(pub(crate) Arc<AtomicBool>);

impl MeshDaemon for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        match &event.payload()[..] {
            b"panic" => panic!("flaky daemon panicked on purpose"),
            b"fail" => Err(DaemonError::ProcessFailed("asked to fail".into())),
            _ if self.0.load(Ordering::SeqCst) => {
                Err(DaemonError::ProcessFailed("switched to failing".into()))
            }
            _ => Ok(vec![event.payload().clone()]),
        }
    }
}

/// Echoes, and may only live on nodes carrying `tag`.
#[derive(Debug)]
pub(crate) struct NeedsTag(pub(crate) &'static str);

impl MeshDaemon for NeedsTag {
    fn name(&self) -> &str {
        "needs-tag"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter::new().require_tag(self.0)
    }
}

/// Counts its own drops (daemons dropped = replicas torn down).
#[derive(Debug)]
pub(crate) struct DropCounter(pub(crate) Arc<AtomicUsize>);

impl MeshDaemon for DropCounter {
    fn name(&self) -> &str {
        "drop-counter"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Zone name of node `id` when nodes are spread round-robin over `zones` zones.
pub(crate) fn zone_of(id: u64, zones: usize) -> String {
    format!("z{}", (id as usize - 1) % zones.max(1))
}

/// Nodes `1..=n`, in round-robin zones `z0..z{zones-1}`.
pub(crate) fn nodes(n: u64, zones: usize) -> Vec<NodeInfo> {
    (1..=n)
        .map(|id| NodeInfo::new(id).with_zone(&zone_of(id, zones)))
        .collect()
}

/// A started runtime over `nodes(n_nodes, zones)` with the `echo` factory.
pub(crate) fn runtime(n_nodes: u64, zones: usize) -> DaemonRuntime {
    let rt = DaemonRuntime::new(nodes(n_nodes, zones));
    rt.register_factory("echo", || Box::new(Echo)).unwrap();
    rt.start().unwrap();
    rt
}

/// A group seed made of one repeated byte.
pub(crate) fn seed(byte: u8) -> [u8; 32] {
    [byte; 32]
}

/// A group config with `count` replicas, seed `[seed_byte; 32]` and `strategy`.
pub(crate) fn config(count: u8, seed_byte: u8, strategy: Strategy) -> ReplicaGroupConfig {
    ReplicaGroupConfig {
        replica_count: count,
        group_seed: seed(seed_byte),
        lb_strategy: strategy,
        host_config: DaemonHostConfig::default(),
    }
}

/// The origin hash replica `index` of the group with seed `[seed_byte; 32]` has.
pub(crate) fn origin(seed_byte: u8, index: u8) -> u64 {
    derive_replica_identity(&seed(seed_byte), index).origin_hash()
}

/// Origin hashes of the healthy members, in index order.
pub(crate) fn healthy_hashes(group: &ReplicaGroup) -> Vec<u64> {
    group
        .replicas()
        .iter()
        .filter(|m| m.healthy)
        .map(|m| m.origin_hash)
        .collect()
}

/// Node ids of the members, in index order.
pub(crate) fn member_nodes(group: &ReplicaGroup) -> Vec<u64> {
    group.replicas().iter().map(|m| m.node_id).collect()
}

/// Runs `f` on another thread and fails if it takes longer than `secs`.
pub(crate) fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}
