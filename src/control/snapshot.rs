//! The writer's state as plain data, for cluster checkpoints (feature
//! `etcd`): every node and every group, exactly what placement depends on,
//! so that a runtime restored from it makes the same choices afterwards as
//! the runtime it was taken from.
//!
//! What placement depends on: the nodes (their description, whether each is
//! alive, and how many replicas each hosts, which follows from the groups);
//! each group's settings, the node of each of its replicas, which replicas
//! are unhealthy, the nodes reported failed to it alone, and its term; and
//! the order the groups were spawned in, which is the order node events
//! visit them.

use std::collections::BTreeSet;

use crate::node::NodeInfo;
use crate::strategy::Strategy;

/// The writer's state (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct WriterState {
    /// Every node, in id order.
    pub(crate) nodes: Vec<NodeState>,
    /// Every live group, in spawn order.
    pub(crate) groups: Vec<GroupSnapshot>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeState {
    pub(crate) info: NodeInfo,
    pub(crate) alive: bool,
}

/// One group. Its host settings are the defaults (cluster groups carry
/// none of their own).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct GroupSnapshot {
    pub(crate) kind: String,
    pub(crate) seed: [u8; 32],
    pub(crate) strategy: Strategy,
    /// The node of each replica, by index.
    pub(crate) placement: Vec<u64>,
    pub(crate) unhealthy: BTreeSet<u8>,
    pub(crate) reported_failed: BTreeSet<u64>,
    pub(crate) term: u64,
}

impl std::fmt::Debug for GroupSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSnapshot")
            .field("kind", &self.kind)
            .field("seed", &"<redacted>")
            .field("strategy", &self.strategy)
            .field("placement", &self.placement)
            .field("unhealthy", &self.unhealthy)
            .field("reported_failed", &self.reported_failed)
            .field("term", &self.term)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::Echo;
    use crate::{
        DaemonHostConfig, DaemonRuntime, NodeInfo, ReplicaGroup, ReplicaGroupConfig, Strategy,
    };

    fn started(runtime: DaemonRuntime) -> DaemonRuntime {
        runtime.register_factory("echo", || Box::new(Echo)).unwrap();
        runtime.start().unwrap();
        runtime
    }

    fn config(seed: u8, count: u8) -> ReplicaGroupConfig {
        ReplicaGroupConfig {
            replica_count: count,
            group_seed: [seed; 32],
            lb_strategy: Strategy::ConsistentHash,
            host_config: DaemonHostConfig::default(),
        }
    }

    /// A runtime restored from another's snapshot holds the same rosters and
    /// makes the same choices on every later change.
    #[test]
    fn a_restored_runtime_agrees_with_the_original_from_then_on() {
        let nodes =
            || (1..=6).map(|id| NodeInfo::new(id).with_zone(if id % 2 == 0 { "a" } else { "b" }));
        let a = started(DaemonRuntime::for_node(2, nodes()));
        let groups: Vec<ReplicaGroup> = (1..=5)
            .map(|s| ReplicaGroup::spawn(&a, "echo", config(s, 3)).unwrap())
            .collect();
        a.node_failed(1).unwrap();
        groups[1].scale_to(5).unwrap();
        groups[2].on_node_failure(4).unwrap();
        a.add_node(NodeInfo::new(7)).unwrap();
        a.node_failed(3).unwrap();
        let b = started(DaemonRuntime::for_node(3, []));
        b.restore(a.snapshot().unwrap()).unwrap();
        assert_eq!(b.roster_digest(), a.roster_digest());
        assert_eq!(b.snapshot().unwrap(), a.snapshot().unwrap());
        let restored = b.groups();
        assert_eq!(restored.len(), 5);
        // The same later changes give the same rosters.
        for rt in [&a, &b] {
            rt.node_recovered(1).unwrap();
            rt.node_failed(6).unwrap();
            rt.group(groups[0].group_id()).unwrap().scale_to(4).unwrap();
        }
        assert_eq!(b.roster_digest(), a.roster_digest());
        for (x, y) in groups.iter().zip(&restored) {
            assert_eq!(x.replicas(), y.replicas());
        }
        // Restoring twice is refused.
        assert!(b.restore(a.snapshot().unwrap()).is_err());
        a.shutdown();
        b.shutdown();
    }
}
