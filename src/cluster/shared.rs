//! The state a process's watcher and its API share: the feed, behind a lock
//! that only changes take (routing never does), and how far it caught up.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::feed::{Change, Effect, Feed};

/// State the watcher and the API share: the feed, behind a lock that only
/// changes take (routing never does).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) feed: Mutex<Feed>,
    pub(crate) applied: Condvar,
    /// The revision up to which every event under the prefix was applied:
    /// the last event's, or a later one etcd's progress notification vouches
    /// for (revisions change outside the prefix too).
    pub(crate) caught_up: AtomicI64,
    /// Asks the watcher for a progress notification.
    pub(crate) progress_wanted: tokio::sync::Notify,
    pub(crate) reconnects: AtomicU64,
}

impl Shared {
    pub(crate) fn apply(&self, revision: i64, change: Change<'_>) -> Effect {
        let effect = self.feed.lock().apply(revision, change);
        self.caught_up.fetch_max(revision, Ordering::AcqRel);
        self.applied.notify_all();
        effect
    }

    /// etcd says every event up to `revision` was sent, and all were applied.
    pub(crate) fn progressed(&self, revision: i64) {
        let _feed = self.feed.lock();
        self.caught_up.fetch_max(revision, Ordering::AcqRel);
        self.applied.notify_all();
    }

    pub(crate) fn caught_up(&self) -> i64 {
        self.caught_up.load(Ordering::Acquire)
    }

    pub(crate) fn applied_revision(&self) -> i64 {
        self.feed.lock().stats.applied_revision
    }

    pub(crate) fn awaits_failure(&self, node: u64) -> bool {
        self.feed.lock().awaits_failure(node)
    }

    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}
