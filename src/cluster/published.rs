//! What the applier thread publishes for the API to read: the groups, the
//! refusals, the status, and how far it caught up. Each is behind its own
//! short lock, never held across a writer round trip, so a slow factory
//! never blocks `status()`, `group()` or `wait_for_revision`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::schema::Intent;
use super::status::{ClusterStatus, FeedStats};
use crate::ReplicaGroup;

/// How long `join`, `spawn_group`, `scale_group` and `remove_group` wait
/// for this process to apply what they wrote.
pub(crate) const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Published {
    groups: Mutex<BTreeMap<u32, (Arc<ReplicaGroup>, Intent)>>,
    rejections: Mutex<BTreeMap<u32, String>>,
    status: Mutex<(i64, u64, FeedStats)>,
    /// The revision up to which every event under the prefix was applied:
    /// the last event's, or a later one etcd's progress notification vouches
    /// for (revisions change outside the prefix too).
    caught_up: AtomicI64,
    caught_up_lock: Mutex<()>,
    applied: Condvar,
    /// Asks the watcher for a progress notification.
    pub(crate) progress_wanted: tokio::sync::Notify,
    reconnects: AtomicU64,
    /// Callers waiting for a revision to be applied, by revision.
    waiters: Mutex<BTreeMap<i64, Vec<oneshot::Sender<()>>>>,
}

impl Published {
    pub(crate) fn set_group(&self, group_id: u32, group: Arc<ReplicaGroup>, intent: Intent) {
        self.groups.lock().insert(group_id, (group, intent));
        self.rejections.lock().remove(&group_id);
    }

    pub(crate) fn set_intent(&self, group_id: u32, intent: Intent) {
        if let Some(entry) = self.groups.lock().get_mut(&group_id) {
            entry.1 = intent;
        }
    }

    pub(crate) fn remove_group(&self, group_id: u32) {
        self.groups.lock().remove(&group_id);
    }

    pub(crate) fn reject(&self, group_id: u32, why: String) {
        self.rejections.lock().insert(group_id, why);
    }

    pub(crate) fn group(&self, group_id: u32) -> Option<Arc<ReplicaGroup>> {
        self.groups
            .lock()
            .get(&group_id)
            .map(|(g, _)| Arc::clone(g))
    }

    pub(crate) fn groups(&self) -> Vec<Arc<ReplicaGroup>> {
        self.groups
            .lock()
            .values()
            .map(|(g, _)| Arc::clone(g))
            .collect()
    }

    pub(crate) fn intent(&self, group_id: u32) -> Option<Intent> {
        self.groups.lock().get(&group_id).map(|(_, i)| i.clone())
    }

    pub(crate) fn rejection(&self, group_id: u32) -> Option<String> {
        self.rejections.lock().get(&group_id).cloned()
    }

    /// Publishes a consistent (revision, digest, stats).
    pub(crate) fn set_status(&self, revision: i64, digest: u64, stats: FeedStats) {
        *self.status.lock() = (revision, digest, stats);
    }

    pub(crate) fn status(&self) -> ClusterStatus {
        let (applied_revision, digest, feed) = self.status.lock().clone();
        ClusterStatus {
            applied_revision,
            digest,
            feed,
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Every event up to `revision` was applied.
    pub(crate) fn caught_up_to(&self, revision: i64) {
        let _guard = self.caught_up_lock.lock();
        self.caught_up.fetch_max(revision, Ordering::AcqRel);
        self.applied.notify_all();
        let mut waiters = self.waiters.lock();
        let later = waiters.split_off(&(revision + 1));
        for waiter in std::mem::replace(&mut *waiters, later)
            .into_values()
            .flatten()
        {
            let _ = waiter.send(());
        }
    }

    /// Fires once every change up to `revision` was applied.
    pub(crate) fn applied(&self, revision: i64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let _guard = self.caught_up_lock.lock();
        if self.caught_up() >= revision {
            let _ = tx.send(());
        } else {
            self.waiters.lock().entry(revision).or_default().push(tx);
        }
        rx
    }

    /// Awaits `applied(revision)`, asking etcd for progress meanwhile;
    /// `false` on timeout. Runs on the connection thread.
    pub(crate) async fn wait_for_async(&self, revision: i64, timeout: Duration) -> bool {
        let mut applied = self.applied(revision);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            tokio::select! {
                done = &mut applied => return done.is_ok(),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return false;
                    }
                    self.progress_wanted.notify_one();
                }
            }
        }
    }

    pub(crate) fn caught_up(&self) -> i64 {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Blocks until every change up to `revision` was applied; `false` on
    /// timeout.
    pub(crate) fn wait_for(&self, revision: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.caught_up_lock.lock();
        while self.caught_up() < revision {
            // No event may be due (the revision moved outside the prefix):
            // ask etcd to vouch for the revision.
            self.progress_wanted.notify_one();
            let wake = (Instant::now() + Duration::from_millis(50)).min(deadline);
            let _ = self.applied.wait_until(&mut guard, wake);
            if Instant::now() >= deadline {
                return self.caught_up() >= revision;
            }
        }
        true
    }
}
