//! The ordered feed: etcd events, in revision order, turned into the
//! commands the runtime's writer already applies.
//!
//! Synchronous and etcd-free, so its rules are tested without a server.
//! Every process that applies the same events in the same order holds the
//! same rosters, because placement is deterministic. Each time the revision
//! crosses a multiple of `checkpoint_every`, the feed first takes a
//! checkpoint of the state at the previous event's revision: every process
//! takes it at the same point of the same sequence, so their digests match.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::checkpoint::{seal_checkpoint, Checkpoint, OwnDigests};
use super::options::{ClusterOptions, ClusterSecret};
use super::published::Published;
use super::schema::{
    checkpoint_key, decode_intent, decode_marker, decode_node, parse_key, Intent, Key, RecordError,
};
use super::state::{FeedState, NodeView};
use super::status::FeedStats;
use crate::identity::group_id_of;
use crate::{DaemonHostConfig, DaemonRuntime, ReplicaGroup, ReplicaGroupConfig};

/// What the applier must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A node's key vanished at `revision`: after the debounce window, if it
    /// is still absent, write its failure marker.
    NodeVanished { node: u64, revision: i64 },
    /// A checkpoint to store under `key`: at once when `designated` (this
    /// process is the checkpoint writer), else only if no process did.
    WriteCheckpoint {
        key: String,
        value: Vec<u8>,
        designated: bool,
    },
}

/// The feed (see the module docs).
pub(crate) struct Feed {
    runtime: DaemonRuntime,
    prefix: String,
    local: Option<(u64, String)>,
    secret: Option<ClusterSecret>,
    every: i64,
    state: FeedState,
    groups: BTreeMap<u32, Arc<ReplicaGroup>>,
    published: Arc<Published>,
    last_revision: i64,
    /// Keys applied at `last_revision` (one revision can carry several
    /// events, e.g. a transaction), to skip a resumed watch's repeats.
    keys_at_last: Vec<Vec<u8>>,
    digests: OwnDigests,
    own_record_seen: bool,
    pub(crate) stats: FeedStats,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("prefix", &self.prefix)
            .field("nodes", &self.state.nodes.len())
            .field("groups", &self.groups.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed applying to `runtime`; `local` is this process's node id and
    /// instance, when it is a node.
    pub(crate) fn new(
        runtime: DaemonRuntime,
        options: &ClusterOptions,
        local: Option<(u64, String)>,
        published: Arc<Published>,
    ) -> Self {
        Feed {
            runtime,
            prefix: options.prefix.clone(),
            local,
            secret: options.secret.clone(),
            every: options.checkpoint_every.max(1),
            state: FeedState::default(),
            groups: BTreeMap::new(),
            published,
            last_revision: 0,
            keys_at_last: Vec::new(),
            digests: OwnDigests::default(),
            own_record_seen: false,
            stats: FeedStats::default(),
        }
    }

    pub(crate) fn runtime(&self) -> &DaemonRuntime {
        &self.runtime
    }

    #[cfg(test)]
    pub(crate) fn group(&self, group_id: u32) -> Option<Arc<ReplicaGroup>> {
        self.groups.get(&group_id).cloned()
    }

    /// Starts from `checkpoint` instead of the empty state: restores the
    /// writer's state into the (empty) runtime and takes the feed's own.
    pub(crate) fn restore(&mut self, checkpoint: Checkpoint) -> Result<Vec<Effect>, String> {
        let encoded = checkpoint.encode();
        self.runtime
            .restore(checkpoint.writer)
            .map_err(|e| format!("checkpoint {} not restored: {e}", checkpoint.revision))?;
        self.state = checkpoint.feed;
        for group in self.runtime.groups() {
            let gid = group.group_id();
            let group = Arc::new(group);
            if let Some(intent) = self.state.intents.get(&gid) {
                self.published
                    .set_group(gid, Arc::clone(&group), intent.clone());
            }
            self.groups.insert(gid, group);
        }
        self.last_revision = checkpoint.revision;
        self.stats.applied_revision = checkpoint.revision;
        self.stats.restored_from = checkpoint.revision;
        self.digests
            .insert(checkpoint.revision, Checkpoint::digest(&encoded));
        tracing::info!(
            revision = checkpoint.revision,
            groups = self.groups.len(),
            "started from a checkpoint"
        );
        let awaiting = self
            .state
            .nodes
            .iter()
            .filter(|(_, n)| !n.present && !n.failed);
        Ok(awaiting
            .map(|(id, n)| Effect::NodeVanished {
                node: *id,
                revision: n.vanished_at,
            })
            .collect())
    }

    /// Applies one event at `revision` (`value` is `None` for a delete).
    /// Events must come in revision order; one already applied is skipped.
    pub(crate) fn apply(&mut self, revision: i64, key: &[u8], value: Option<&[u8]>) -> Vec<Effect> {
        let mut effects = Vec::new();
        if revision < self.last_revision
            || (revision == self.last_revision && self.keys_at_last.iter().any(|k| k == key))
        {
            self.stats.duplicates_skipped += 1;
            return effects;
        }
        if revision > self.last_revision {
            if self.last_revision > 0 && revision / self.every > self.last_revision / self.every {
                effects.extend(self.checkpoint());
            }
            self.keys_at_last.clear();
        }
        self.keys_at_last.push(key.to_vec());
        self.last_revision = revision;
        self.stats.applied_revision = revision;
        self.stats.events_applied += 1;
        match parse_key(&self.prefix, key) {
            Ok(parsed) => effects.extend(self.apply_parsed(revision, parsed, key, value)),
            Err(why) => self.refused(revision, RecordError::Malformed(why)),
        }
        effects
    }

    /// The checkpoint of the state at `last_revision`: its digest kept to
    /// verify others' checkpoints, and sealed for writing.
    fn checkpoint(&mut self) -> Option<Effect> {
        let started = Instant::now();
        let revision = self.last_revision;
        let writer = match self.runtime.snapshot() {
            Ok(writer) => writer,
            Err(e) => {
                tracing::warn!(revision, %e, "no checkpoint: the writer gave no snapshot");
                return None;
            }
        };
        let checkpoint = Checkpoint {
            revision,
            writer,
            feed: self.state.clone(),
        };
        let encoded = checkpoint.encode();
        self.digests.insert(revision, Checkpoint::digest(&encoded));
        let secret = self.secret.as_ref()?;
        let key = checkpoint_key(&self.prefix, revision);
        let value = seal_checkpoint(secret, &key, &encoded);
        self.stats.last_checkpoint_bytes = value.len() as u64;
        self.stats.last_checkpoint_micros = started.elapsed().as_micros() as u64;
        let local = self.local.as_ref().map(|(id, _)| *id);
        let designated = local.is_some() && local == self.state.checkpoint_writer();
        if designated {
            self.stats.checkpoints_written += 1;
        }
        Some(Effect::WriteCheckpoint {
            key,
            value,
            designated,
        })
    }

    fn refused(&mut self, revision: i64, error: RecordError) {
        self.stats.count_refused(revision, error);
    }

    fn rejected(&mut self, revision: i64, group_id: u32, why: String) {
        self.stats.rejected += 1;
        tracing::warn!(revision, group_id, why = %why, "cluster change refused by the runtime");
        self.published.reject(group_id, why);
    }

    fn apply_parsed(
        &mut self,
        revision: i64,
        parsed: Key,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Option<Effect> {
        match (parsed, value) {
            (Key::Node(id), Some(value)) => self.node_put(revision, id, value),
            (Key::Node(id), None) => match self.state.nodes.get_mut(&id) {
                Some(node) if node.present => {
                    node.present = false;
                    node.vanished_at = revision;
                    tracing::info!(revision, node = id, "node key vanished");
                    return Some(Effect::NodeVanished { node: id, revision });
                }
                _ => {}
            },
            (Key::Failed(id), Some(value)) => match decode_marker(value) {
                Err(e) => self.refused(revision, e),
                Ok(_) if self.state.awaits_failure(id) => {
                    let replaced = self.runtime.node_failed(id);
                    tracing::info!(revision, node = id, ?replaced, "node failed");
                    if let Some(node) = self.state.nodes.get_mut(&id) {
                        node.failed = true;
                    }
                }
                Ok(_) => {}
            },
            (Key::Group(gid), Some(value)) => {
                let key = String::from_utf8_lossy(key);
                match decode_intent(self.secret.as_ref(), &key, value) {
                    Ok(intent) => self.apply_intent(revision, gid, intent),
                    Err(e) => self.refused(revision, e),
                }
            }
            (Key::Group(gid), None) => self.remove_group(revision, gid),
            (Key::Checkpoint(at), Some(value)) => self.verify(at, key, value),
            (Key::Failed(_) | Key::Checkpoint(_), None) => {}
        }
        None
    }

    fn node_put(&mut self, revision: i64, id: u64, value: &[u8]) {
        let record = match decode_node(value) {
            Ok(record) if record.id == id => record,
            Ok(record) => {
                let why = format!("node key {id} holds a record of node {}", record.id);
                self.refused(revision, RecordError::Malformed(why));
                return;
            }
            Err(e) => {
                self.refused(revision, e);
                return;
            }
        };
        if let Some((local, instance)) = &self.local {
            // Earlier holders of the id (this node's past lives, replayed)
            // are no claim: only a record after this process's own is.
            self.own_record_seen |= *local == id && record.instance == *instance;
            if *local == id && record.instance != *instance && self.own_record_seen {
                self.stats.duplicate_claims += 1;
                tracing::error!(revision, node = id, holder = %record.instance, "another process claimed this process's node id");
            }
        }
        match self.state.nodes.get_mut(&id) {
            None => {
                if let Err(e) = self.runtime.add_node(record.node_info()) {
                    tracing::warn!(revision, node = id, %e, "node not added");
                }
                let view = NodeView {
                    present: true,
                    failed: false,
                    vanished_at: 0,
                };
                self.state.nodes.insert(id, view);
                tracing::info!(revision, node = id, "node joined");
                self.retry_pending(revision);
            }
            Some(node) => {
                node.present = true;
                if node.failed {
                    node.failed = false;
                    let marked = self.runtime.node_recovered(id);
                    tracing::info!(revision, node = id, ?marked, "node recovered");
                    self.retry_pending(revision);
                }
            }
        }
    }

    fn retry_pending(&mut self, revision: i64) {
        for (gid, intent) in std::mem::take(&mut self.state.pending) {
            self.apply_intent(revision, gid, intent);
        }
    }

    fn apply_intent(&mut self, revision: i64, gid: u32, intent: Intent) {
        if group_id_of(&intent.seed) != gid {
            let why = format!(
                "group key {gid} holds the seed of group {}",
                group_id_of(&intent.seed)
            );
            return self.refused(revision, RecordError::Malformed(why));
        }
        if let Some(group) = self.groups.get(&gid).cloned() {
            let current = self.state.intents.get(&gid);
            if current.is_some_and(|c| c.seed != intent.seed || c.kind != intent.kind) {
                let why = "a different kind or seed under an existing group id".to_owned();
                return self.rejected(revision, gid, why);
            }
            let count = intent.replica_count;
            self.state.intents.insert(gid, intent.clone());
            self.published.set_intent(gid, intent);
            if let Err(e) = group.scale_to(count) {
                self.rejected(revision, gid, e.to_string());
            }
            return;
        }
        let config = ReplicaGroupConfig {
            replica_count: intent.replica_count,
            group_seed: intent.seed,
            lb_strategy: intent.strategy,
            host_config: DaemonHostConfig::default(),
        };
        match ReplicaGroup::spawn(&self.runtime, &intent.kind, config) {
            Ok(group) => {
                let group = Arc::new(group);
                self.state.pending.remove(&gid);
                self.state.intents.insert(gid, intent.clone());
                self.published.set_group(gid, Arc::clone(&group), intent);
                self.groups.insert(gid, group);
            }
            Err(e) => {
                self.rejected(revision, gid, e.to_string());
                self.state.pending.insert(gid, intent);
            }
        }
    }

    fn remove_group(&mut self, revision: i64, gid: u32) {
        self.state.pending.remove(&gid);
        let Some(group) = self.groups.remove(&gid) else {
            return;
        };
        self.state.intents.remove(&gid);
        self.published.remove_group(gid);
        match group.remove() {
            Ok(()) => tracing::info!(revision, group_id = gid, "group removed"),
            Err(e) => tracing::warn!(revision, group_id = gid, %e, "group removal refused"),
        }
    }

    /// Compares another process's checkpoint with this process's own state
    /// at its revision.
    fn verify(&mut self, revision: i64, key: &[u8], value: &[u8]) {
        let key = String::from_utf8_lossy(key);
        let secret = self.secret.as_ref();
        self.digests
            .verify(secret, revision, &key, value, &mut self.stats);
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
