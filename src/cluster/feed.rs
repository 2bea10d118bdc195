//! The ordered feed: etcd events, in revision order, turned into the
//! commands the runtime's writer already applies.
//!
//! Synchronous and etcd-free, so its rules are tested without a server.
//! Every process that applies the same events in the same order holds the
//! same rosters, because placement is deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::schema::{parse_key, FailureMarker, GroupIntent, Key, NodeRecord};
use crate::identity::group_id_of;
use crate::{DaemonHostConfig, DaemonRuntime, ReplicaGroup, ReplicaGroupConfig};

/// One event under the prefix.
#[derive(Debug, Clone)]
pub(crate) enum Change<'a> {
    Put { key: &'a [u8], value: &'a [u8] },
    Delete { key: &'a [u8] },
}

/// What the watcher must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Nothing,
    /// A node's key vanished at `revision`: after the debounce window, if it
    /// is still absent, write its failure marker.
    NodeVanished {
        node: u64,
        revision: i64,
    },
}

/// Counters of what the feed did, for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// The last etcd revision applied (0 before any).
    pub applied_revision: i64,
    /// Events applied.
    pub events_applied: u64,
    /// Events seen again (a resumed watch overlapping) and skipped.
    pub duplicates_skipped: u64,
    /// Values under the prefix that did not parse, skipped and never applied.
    pub malformed: u64,
    /// Valid changes the runtime refused (e.g. a group that cannot be placed).
    pub rejected: u64,
    /// Times another process claimed this process's node id.
    pub duplicate_claims: u64,
}

#[derive(Debug)]
struct NodeView {
    present: bool,
    failed: bool,
}

/// The feed's state: what the event history so far says.
pub(crate) struct Feed {
    runtime: DaemonRuntime,
    prefix: String,
    local: Option<(u64, String)>,
    nodes: BTreeMap<u64, NodeView>,
    groups: BTreeMap<u32, (Arc<ReplicaGroup>, GroupIntent)>,
    /// Intents whose spawn was refused (e.g. not enough nodes yet), retried
    /// whenever a node joins or recovers, in group id order.
    pending: BTreeMap<u32, GroupIntent>,
    rejections: BTreeMap<u32, String>,
    /// Keys applied at `stats.applied_revision` (one revision can carry
    /// several events, e.g. a transaction).
    keys_at_last: Vec<Vec<u8>>,
    pub(crate) stats: FeedStats,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("prefix", &self.prefix)
            .field("nodes", &self.nodes.len())
            .field("groups", &self.groups.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed applying to `runtime`; `local` is this process's node id and
    /// instance, when it is a node.
    pub(crate) fn new(runtime: DaemonRuntime, prefix: &str, local: Option<(u64, String)>) -> Self {
        Feed {
            runtime,
            prefix: prefix.to_owned(),
            local,
            nodes: BTreeMap::new(),
            groups: BTreeMap::new(),
            pending: BTreeMap::new(),
            rejections: BTreeMap::new(),
            keys_at_last: Vec::new(),
            stats: FeedStats::default(),
        }
    }

    pub(crate) fn group(&self, group_id: u32) -> Option<Arc<ReplicaGroup>> {
        self.groups.get(&group_id).map(|(g, _)| Arc::clone(g))
    }

    pub(crate) fn groups(&self) -> Vec<Arc<ReplicaGroup>> {
        self.groups.values().map(|(g, _)| Arc::clone(g)).collect()
    }

    pub(crate) fn intent(&self, group_id: u32) -> Option<GroupIntent> {
        self.groups.get(&group_id).map(|(_, i)| i.clone())
    }

    pub(crate) fn rejection(&self, group_id: u32) -> Option<&str> {
        self.rejections.get(&group_id).map(String::as_str)
    }

    /// Whether the history so far says node `id` is gone and not yet failed.
    pub(crate) fn awaits_failure(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| !n.present && !n.failed)
    }

    /// Applies one event at `revision`. Events must come in revision order;
    /// one already applied is skipped.
    pub(crate) fn apply(&mut self, revision: i64, change: Change<'_>) -> Effect {
        let key = match change {
            Change::Put { key, .. } | Change::Delete { key } => key,
        };
        if revision < self.stats.applied_revision
            || (revision == self.stats.applied_revision
                && self.keys_at_last.iter().any(|k| k == key))
        {
            self.stats.duplicates_skipped += 1;
            return Effect::Nothing;
        }
        if revision > self.stats.applied_revision {
            self.keys_at_last.clear();
        }
        self.keys_at_last.push(key.to_vec());
        self.stats.applied_revision = revision;
        self.stats.events_applied += 1;
        match parse_key(&self.prefix, key) {
            Ok(parsed) => self.apply_parsed(revision, parsed, change),
            Err(why) => {
                self.malformed(revision, &why);
                Effect::Nothing
            }
        }
    }

    fn malformed(&mut self, revision: i64, why: &str) {
        self.stats.malformed += 1;
        tracing::warn!(
            revision,
            why,
            "malformed value under the cluster prefix skipped"
        );
    }

    fn rejected(&mut self, revision: i64, group_id: u32, why: String) {
        self.stats.rejected += 1;
        tracing::warn!(revision, group_id, why = %why, "cluster change refused by the runtime");
        self.rejections.insert(group_id, why);
    }

    fn apply_parsed(&mut self, revision: i64, key: Key, change: Change<'_>) -> Effect {
        match (key, change) {
            (Key::Node(id), Change::Put { value, .. }) => self.node_put(revision, id, value),
            (Key::Node(id), Change::Delete { .. }) => match self.nodes.get_mut(&id) {
                Some(node) if node.present => {
                    node.present = false;
                    tracing::info!(revision, node = id, "node key vanished");
                    Effect::NodeVanished { node: id, revision }
                }
                _ => Effect::Nothing,
            },
            (Key::Failed(id), Change::Put { value, .. }) => {
                if let Err(e) = serde_json::from_slice::<FailureMarker>(value) {
                    self.malformed(revision, &format!("failure marker of node {id}: {e}"));
                } else if self.awaits_failure(id) {
                    let replaced = self.runtime.node_failed(id);
                    tracing::info!(revision, node = id, ?replaced, "node failed");
                    if let Some(node) = self.nodes.get_mut(&id) {
                        node.failed = true;
                    }
                }
                Effect::Nothing
            }
            (Key::Failed(_), Change::Delete { .. }) => Effect::Nothing,
            (Key::Group(gid), Change::Put { value, .. }) => {
                self.group_put(revision, gid, value);
                Effect::Nothing
            }
            (Key::Group(gid), Change::Delete { .. }) => {
                self.rejected(
                    revision,
                    gid,
                    "group removal is not supported; the group stays".into(),
                );
                Effect::Nothing
            }
        }
    }

    fn node_put(&mut self, revision: i64, id: u64, value: &[u8]) -> Effect {
        let record: NodeRecord = match serde_json::from_slice(value) {
            Ok(r) => r,
            Err(e) => {
                self.malformed(revision, &format!("node {id}: {e}"));
                return Effect::Nothing;
            }
        };
        if record.id != id {
            self.malformed(
                revision,
                &format!("node key {id} holds a record of node {}", record.id),
            );
            return Effect::Nothing;
        }
        if let Some((local, instance)) = &self.local {
            if *local == id && record.instance != *instance {
                self.stats.duplicate_claims += 1;
                tracing::error!(revision, node = id, holder = %record.instance, "another process claimed this process's node id");
            }
        }
        match self.nodes.get_mut(&id) {
            None => {
                if let Err(e) = self.runtime.add_node(record.node_info()) {
                    tracing::warn!(revision, node = id, %e, "node not added");
                }
                self.nodes.insert(
                    id,
                    NodeView {
                        present: true,
                        failed: false,
                    },
                );
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
        Effect::Nothing
    }

    fn retry_pending(&mut self, revision: i64) {
        for (gid, intent) in std::mem::take(&mut self.pending) {
            self.apply_intent(revision, gid, intent);
        }
    }

    fn group_put(&mut self, revision: i64, gid: u32, value: &[u8]) {
        match serde_json::from_slice(value) {
            Ok(intent) => self.apply_intent(revision, gid, intent),
            Err(e) => self.malformed(revision, &format!("group {gid}: {e}")),
        }
    }

    fn apply_intent(&mut self, revision: i64, gid: u32, intent: GroupIntent) {
        let (seed, strategy) = match (intent.seed_bytes(), intent.strategy()) {
            (Ok(seed), Ok(strategy)) => (seed, strategy),
            (Err(e), _) | (_, Err(e)) => {
                return self.malformed(revision, &format!("group {gid}: {e}"))
            }
        };
        if group_id_of(&seed) != gid {
            return self.malformed(
                revision,
                &format!(
                    "group key {gid} holds the seed of group {}",
                    group_id_of(&seed)
                ),
            );
        }
        if let Some((group, current)) = self.groups.get_mut(&gid) {
            if current.seed != intent.seed || current.kind != intent.kind {
                let why = "a different kind or seed under an existing group id".to_owned();
                return self.rejected(revision, gid, why);
            }
            let group = Arc::clone(group);
            *current = intent.clone();
            if let Err(e) = group.scale_to(intent.replica_count) {
                self.rejected(revision, gid, e.to_string());
            }
            return;
        }
        let config = ReplicaGroupConfig {
            replica_count: intent.replica_count,
            group_seed: seed,
            lb_strategy: strategy,
            host_config: DaemonHostConfig::default(),
        };
        match ReplicaGroup::spawn(&self.runtime, &intent.kind, config) {
            Ok(group) => {
                self.rejections.remove(&gid);
                self.pending.remove(&gid);
                self.groups.insert(gid, (Arc::new(group), intent));
            }
            Err(e) => {
                self.rejected(revision, gid, e.to_string());
                self.pending.insert(gid, intent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{failed_key, group_key, node_key};
    use super::*;
    use crate::{Event, MeshDaemon, NodeInfo, Strategy};

    struct Echo;
    impl MeshDaemon for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, crate::DaemonError> {
            Ok(vec![e.payload().clone()])
        }
    }

    const P: &str = "/rr";

    fn feed(local: Option<u64>) -> Feed {
        let rt = match local {
            Some(id) => DaemonRuntime::for_node(id, []),
            None => DaemonRuntime::new([]),
        };
        rt.register_factory("echo", || Box::new(Echo)).unwrap();
        rt.start().unwrap();
        Feed::new(rt, P, local.map(|id| (id, format!("instance-{id}"))))
    }

    fn node(f: &mut Feed, rev: i64, id: u64, instance: &str) -> Effect {
        let value = serde_json::to_vec(&NodeRecord::new(&NodeInfo::new(id), instance)).unwrap();
        f.apply(
            rev,
            Change::Put {
                key: node_key(P, id).as_bytes(),
                value: &value,
            },
        )
    }

    fn intent(f: &mut Feed, rev: i64, seed: u8, count: u8) -> u32 {
        let seed = [seed; 32];
        let gid = group_id_of(&seed);
        let value = serde_json::to_vec(&GroupIntent::new(
            "echo",
            &seed,
            count,
            Strategy::RoundRobin,
        ))
        .unwrap();
        f.apply(
            rev,
            Change::Put {
                key: group_key(P, gid).as_bytes(),
                value: &value,
            },
        );
        gid
    }

    fn marker(f: &mut Feed, rev: i64, id: u64) {
        let value = serde_json::to_vec(&FailureMarker {
            vanished_at: rev - 1,
        })
        .unwrap();
        f.apply(
            rev,
            Change::Put {
                key: failed_key(P, id).as_bytes(),
                value: &value,
            },
        );
    }

    #[test]
    fn nodes_and_intents_become_groups_in_revision_order() {
        let mut f = feed(None);
        for id in 1..=3 {
            node(&mut f, id as i64, id, "a");
        }
        let gid = intent(&mut f, 4, 1, 3);
        let group = f.group(gid).unwrap();
        assert_eq!(group.replica_count(), 3);
        intent(&mut f, 5, 1, 2);
        assert_eq!(group.replica_count(), 2);
        assert_eq!(f.stats.applied_revision, 5);
        assert_eq!(f.stats.events_applied, 5);
    }

    #[test]
    fn an_intent_that_cannot_be_placed_waits_for_nodes() {
        let mut f = feed(None);
        node(&mut f, 1, 1, "a");
        let gid = intent(&mut f, 2, 2, 2);
        assert!(f.group(gid).is_none());
        assert!(f.rejection(gid).unwrap().contains("placement failed"));
        node(&mut f, 3, 2, "a");
        assert_eq!(f.group(gid).unwrap().replica_count(), 2);
    }

    #[test]
    fn a_vanished_node_fails_only_at_its_marker() {
        let mut f = feed(None);
        for id in 1..=3 {
            node(&mut f, id as i64, id, "a");
        }
        let gid = intent(&mut f, 4, 3, 2);
        let group = f.group(gid).unwrap();
        let victim = group.replicas()[0].node_id;
        let effect = f.apply(
            5,
            Change::Delete {
                key: node_key(P, victim).as_bytes(),
            },
        );
        assert_eq!(
            effect,
            Effect::NodeVanished {
                node: victim,
                revision: 5
            }
        );
        assert!(f.awaits_failure(victim));
        assert!(
            group.replicas().iter().any(|m| m.node_id == victim),
            "no failover before the marker"
        );
        marker(&mut f, 6, victim);
        assert!(group
            .replicas()
            .iter()
            .all(|m| m.node_id != victim && m.healthy));
        assert!(!f.awaits_failure(victim));
        // The node comes back: recovery, and the moved member stays.
        node(&mut f, 7, victim, "b");
        assert!(group.replicas().iter().all(|m| m.node_id != victim));
    }

    #[test]
    fn a_node_back_before_its_marker_causes_no_replacement() {
        let mut f = feed(None);
        for id in 1..=3 {
            node(&mut f, id as i64, id, "a");
        }
        let gid = intent(&mut f, 4, 4, 2);
        let before = f.group(gid).unwrap().replicas();
        let victim = before[1].node_id;
        f.apply(
            5,
            Change::Delete {
                key: node_key(P, victim).as_bytes(),
            },
        );
        node(&mut f, 6, victim, "restarted");
        assert!(!f.awaits_failure(victim));
        // A late marker (written before the node was seen back) is ignored.
        marker(&mut f, 7, victim);
        assert_eq!(f.group(gid).unwrap().replicas(), before);
    }

    #[test]
    fn repeated_events_are_skipped_and_malformed_values_counted() {
        let mut f = feed(None);
        node(&mut f, 1, 1, "a");
        node(&mut f, 1, 1, "a");
        assert_eq!(f.stats.duplicates_skipped, 1);
        f.apply(
            2,
            Change::Put {
                key: node_key(P, 2).as_bytes(),
                value: b"{not json",
            },
        );
        f.apply(
            3,
            Change::Put {
                key: b"/rr/whatever/1",
                value: b"{}",
            },
        );
        f.apply(
            4,
            Change::Put {
                key: node_key(P, 3).as_bytes(),
                value: br#"{"id":4,"instance":"x"}"#,
            },
        );
        let bad_seed = br#"{"kind":"echo","seed":"xyz","replica_count":1,"strategy":"RoundRobin"}"#;
        f.apply(
            5,
            Change::Put {
                key: group_key(P, 1).as_bytes(),
                value: bad_seed,
            },
        );
        assert_eq!(f.stats.malformed, 4);
        assert_eq!(
            f.runtime.roster_digest(),
            DaemonRuntime::new([]).roster_digest()
        );
    }

    #[test]
    fn another_process_claiming_our_node_id_is_reported() {
        let mut f = feed(Some(1));
        node(&mut f, 1, 1, "instance-1");
        assert_eq!(f.stats.duplicate_claims, 0);
        node(&mut f, 2, 1, "intruder");
        assert_eq!(f.stats.duplicate_claims, 1);
    }
}
