//! The feed's own state, beside the writer's: what placement depends on
//! that the runtime does not hold. A checkpoint carries both.

use std::collections::BTreeMap;

use super::schema::Intent;

/// What the history says of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    /// Its key exists.
    pub(crate) present: bool,
    /// Its failure marker was applied (and it has not come back since).
    pub(crate) failed: bool,
    /// The revision its key last vanished at (0: never).
    pub(crate) vanished_at: i64,
}

/// The feed's state (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FeedState {
    /// Every node ever seen, by id.
    pub(crate) nodes: BTreeMap<u64, NodeView>,
    /// The intent of every live group, by group id.
    pub(crate) intents: BTreeMap<u32, Intent>,
    /// Intents whose spawn was refused (e.g. not enough nodes yet), retried
    /// in group id order whenever a node joins or recovers.
    pub(crate) pending: BTreeMap<u32, Intent>,
}

impl FeedState {
    /// Whether node `id` is gone and not yet failed.
    pub(crate) fn awaits_failure(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| !n.present && !n.failed)
    }

    /// The node that writes checkpoints: the lowest id present and not
    /// failed. Every process agrees on it at every revision.
    pub(crate) fn checkpoint_writer(&self) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(_, n)| n.present && !n.failed)
            .map(|(id, _)| *id)
    }
}
