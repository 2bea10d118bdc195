//! The writer's view of the cluster: every node, whether it is alive, how
//! many replicas it hosts, and which groups have a replica on it.
//!
//! Ordered maps throughout: placement and failover iterate these, and two
//! runtimes that apply the same changes must make the same choices.

use std::collections::BTreeMap;

use crate::hash::hash_bytes;
use crate::node::NodeInfo;
use crate::strategy::Locale;

/// The writer's private key of a group (spawn order), distinct from the
/// public 32-bit `group_id`, which two seeds can share.
pub(crate) type GroupKey = u64;

/// One node as the writer tracks it.
#[derive(Debug)]
pub(crate) struct NodeEntry {
    info: NodeInfo,
    /// The node as routing weighs it, hashed once here.
    locale: Locale,
    alive: bool,
    /// Replicas placed on this node, over all groups.
    hosted: usize,
}

/// Which replicas a runtime runs (creates daemons for); the others it only
/// routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Hosting {
    /// Every replica: a runtime on its own.
    #[default]
    Every,
    /// The replicas placed on this node: one process of a cluster.
    Node(u64),
    /// None: a process that only routes (a cluster observer).
    Nothing,
}

/// Every node the runtime knows.
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    nodes: BTreeMap<u64, NodeEntry>,
    /// Which replicas this process runs.
    hosting: Hosting,
}

impl NodeTable {
    pub(crate) fn new(nodes: impl IntoIterator<Item = NodeInfo>, hosting: Hosting) -> Self {
        let mut table = NodeTable {
            hosting,
            ..NodeTable::default()
        };
        for node in nodes {
            // A repeated id in the initial list: the last description wins.
            table.nodes.insert(node.id(), NodeEntry::new(node));
        }
        table
    }

    /// Which replicas this process runs.
    #[cfg(feature = "etcd")]
    pub(crate) fn hosting(&self) -> Hosting {
        self.hosting
    }

    /// Adds a node; `false` if the id is taken.
    pub(crate) fn add(&mut self, node: NodeInfo) -> bool {
        if self.nodes.contains_key(&node.id()) {
            return false;
        }
        self.nodes.insert(node.id(), NodeEntry::new(node));
        true
    }

    pub(crate) fn get(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.get(&id)
    }

    /// Marks node `id` alive or failed; `false` when the node is unknown.
    pub(crate) fn set_alive(&mut self, id: u64, alive: bool) -> bool {
        match self.nodes.get_mut(&id) {
            Some(node) => {
                node.alive = alive;
                true
            }
            None => false,
        }
    }

    /// Whether this process runs the replicas placed on `node`.
    pub(crate) fn hosts_here(&self, node: u64) -> bool {
        match self.hosting {
            Hosting::Every => true,
            Hosting::Node(local) => local == node,
            Hosting::Nothing => false,
        }
    }

    pub(crate) fn is_alive(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.alive)
    }

    /// All nodes in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.values()
    }

    /// Records that a replica now lives on `node`.
    pub(crate) fn attach(&mut self, node: u64) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.hosted += 1;
        }
    }

    /// Records that a replica left `node`.
    pub(crate) fn detach(&mut self, node: u64) {
        if let Some(n) = self.nodes.get_mut(&node) {
            n.hosted = n.hosted.saturating_sub(1);
        }
    }
}

impl NodeEntry {
    pub(crate) fn info(&self) -> &NodeInfo {
        &self.info
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive
    }

    pub(crate) fn locale(&self) -> &Locale {
        &self.locale
    }

    /// Replicas placed on this node, over all groups.
    pub(crate) fn hosted(&self) -> usize {
        self.hosted
    }

    fn new(info: NodeInfo) -> Self {
        let mut tags: Vec<u64> = info.tags().map(|t| hash_bytes(t.as_bytes())).collect();
        tags.sort_unstable();
        let locale = Locale {
            weight: info.weight(),
            zone: info.zone().map(|z| hash_bytes(z.as_bytes())),
            tags: tags.into(),
        };
        NodeEntry {
            locale,
            info,
            alive: true,
            hosted: 0,
        }
    }
}
