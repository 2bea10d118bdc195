//! The daemon registry: origin hash → the host running that replica.
//!
//! Only the writer changes it; `deliver` reads it from any thread.

use crate::daemon::DaemonHost;
use crate::sync::{Arc, Map};

/// Origin hash → host. A `dashmap`, so deliveries to different replicas do
/// not contend on one lock.
#[derive(Debug, Default)]
pub(crate) struct DaemonRegistry {
    hosts: Map<u64, Arc<DaemonHost>>,
}

impl DaemonRegistry {
    pub(crate) fn get(&self, origin_hash: u64) -> Option<Arc<DaemonHost>> {
        self.hosts.get_cloned(&origin_hash)
    }

    pub(crate) fn contains(&self, origin_hash: u64) -> bool {
        self.hosts.contains_key(&origin_hash)
    }

    /// Registers or replaces in one step: a delivery sees the old host or the
    /// new one, never neither.
    pub(crate) fn put(&self, origin_hash: u64, host: Arc<DaemonHost>) {
        self.hosts.insert(origin_hash, host);
    }

    pub(crate) fn remove(&self, origin_hash: u64) {
        self.hosts.remove(&origin_hash);
    }

    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }
}
