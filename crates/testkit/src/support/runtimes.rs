//! Builders for nodes, runtimes and group configs, and the views of a group
//! tests compare.

use std::collections::BTreeMap;

use replica_router::{
    derive_replica_identity, DaemonHostConfig, DaemonRuntime, MemberInfo, NodeInfo, ReplicaGroup,
    ReplicaGroupConfig, Strategy,
};

use super::daemons::{quiet_deliberate_panics, Echo, Flaky};

/// Zone name of node `id` when nodes are spread round-robin over `zones`
/// zones: `z0`, `z1`, ...
pub fn zone_of(id: u64, zones: usize) -> String {
    format!("z{}", (id as usize - 1) % zones.max(1))
}

/// Nodes `1..=n`, in round-robin zones `z0..z{zones-1}`.
pub fn nodes(n: u64, zones: usize) -> Vec<NodeInfo> {
    (1..=n)
        .map(|id| NodeInfo::new(id).with_zone(&zone_of(id, zones)))
        .collect()
}

/// A started runtime over `nodes`, with the kinds `echo` ([`Echo`]) and
/// `flaky` ([`Flaky`]); deliberate panics stay quiet.
pub fn runtime_on(nodes: impl IntoIterator<Item = NodeInfo>) -> DaemonRuntime {
    quiet_deliberate_panics();
    let rt = DaemonRuntime::new(nodes);
    rt.register_factory("echo", || Box::new(Echo)).unwrap();
    rt.register_factory("flaky", || Box::new(Flaky::default()))
        .unwrap();
    rt.start().unwrap();
    rt
}

/// A started runtime over [`nodes`]`(n, zones)`, with the kinds `echo` and
/// `flaky`.
pub fn runtime(n: u64, zones: usize) -> DaemonRuntime {
    runtime_on(nodes(n, zones))
}

/// A group seed made of one repeated byte.
pub fn seed(byte: u8) -> [u8; 32] {
    [byte; 32]
}

/// A group config: `count` replicas, seed `[seed_byte; 32]`, `strategy`, the
/// default host settings.
pub fn config(count: u8, seed_byte: u8, strategy: Strategy) -> ReplicaGroupConfig {
    config_with_host(count, seed_byte, strategy, DaemonHostConfig::default())
}

/// [`config`] with `host` as the replicas' host settings.
pub fn config_with_host(
    count: u8,
    seed_byte: u8,
    strategy: Strategy,
    host: DaemonHostConfig,
) -> ReplicaGroupConfig {
    ReplicaGroupConfig {
        replica_count: count,
        group_seed: seed(seed_byte),
        lb_strategy: strategy,
        host_config: host,
    }
}

/// The origin hash replica `index` of the group with seed `[seed_byte; 32]`
/// has.
pub fn origin(seed_byte: u8, index: u8) -> u64 {
    derive_replica_identity(&seed(seed_byte), index).origin_hash()
}

/// Origin hashes of the healthy members, in index order.
pub fn healthy_hashes(group: &ReplicaGroup) -> Vec<u64> {
    group
        .replicas()
        .iter()
        .filter(|m| m.healthy)
        .map(|m| m.origin_hash)
        .collect()
}

/// Node ids of the members, in index order.
pub fn member_nodes(group: &ReplicaGroup) -> Vec<u64> {
    group.replicas().iter().map(|m| m.node_id).collect()
}

/// The member on node `node`, if any.
pub fn member_on(group: &ReplicaGroup, node: u64) -> Option<MemberInfo> {
    group.replicas().into_iter().find(|m| m.node_id == node)
}

/// How many times each value occurs: routes per member, members per zone.
pub fn tally<T: Ord>(values: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts
}
