//! The registry: origin hash → the replica, for `DaemonRuntime::deliver`.
//!
//! Only the writer changes it; deliveries read it from any thread.

use crate::daemon::Replica;
use crate::sync::{Arc, DashMap};

/// Origin hash → replica. A `dashmap`, so deliveries to different replicas
/// do not contend on one lock.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    replicas: DashMap<u64, Arc<Replica>>,
}

impl Registry {
    pub(crate) fn get(&self, origin_hash: u64) -> Option<Arc<Replica>> {
        self.replicas
            .get(&origin_hash)
            .map(|r| Arc::clone(r.value()))
    }

    pub(crate) fn contains(&self, origin_hash: u64) -> bool {
        self.replicas.contains_key(&origin_hash)
    }

    /// Whether `replica` is the one registered under its origin hash.
    pub(crate) fn holds(&self, replica: &Arc<Replica>) -> bool {
        self.replicas
            .get(&replica.origin_hash())
            .is_some_and(|r| Arc::ptr_eq(r.value(), replica))
    }

    /// Registers or replaces in one step: a delivery sees the old replica or
    /// the new one, never neither.
    pub(crate) fn put(&self, replica: &Arc<Replica>) {
        self.replicas
            .insert(replica.origin_hash(), Arc::clone(replica));
    }

    /// Unregisters `replica`, unless its origin hash already names another
    /// (its successor after a failover, or a replica grown back).
    pub(crate) fn remove_if_held(&self, replica: &Arc<Replica>) {
        self.replicas
            .remove_if(&replica.origin_hash(), |_, held| Arc::ptr_eq(held, replica));
    }

    pub(crate) fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Gives back table memory once most entries are gone (after a removal),
    /// so that a long-lived runtime's registry follows its live groups.
    pub(crate) fn shrink_if_sparse(&self) {
        if self.replicas.len() * 4 < self.replicas.capacity() {
            self.replicas.shrink_to_fit();
        }
    }
}
