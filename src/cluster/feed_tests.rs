use super::super::schema::{encode_intent, failed_key, group_key, node_key, NodeRecord};
use super::*;
use crate::daemon::Echo;
use crate::{NodeInfo, Strategy};

const P: &str = "/rr";
const SECRET: [u8; 32] = [7; 32];

fn options() -> ClusterOptions {
    ClusterOptions::new("http://unused", P)
        .with_secret(SECRET)
        .with_checkpoint_every(10)
}

fn feed_with(local: Option<u64>, options: &ClusterOptions) -> Feed {
    let rt = match local {
        Some(id) => DaemonRuntime::for_node(id, []),
        None => DaemonRuntime::observer([]),
    };
    rt.register_factory("echo", || Box::new(Echo)).unwrap();
    rt.start().unwrap();
    let local = local.map(|id| (id, format!("instance-{id}")));
    Feed::new(rt, options, local, Arc::new(Published::default()))
}

fn feed(local: Option<u64>) -> Feed {
    feed_with(local, &options())
}

fn put(f: &mut Feed, rev: i64, key: &str, value: &[u8]) -> Vec<Effect> {
    f.apply(rev, key.as_bytes(), Some(value))
}

fn node(f: &mut Feed, rev: i64, id: u64, instance: &str) -> Vec<Effect> {
    let value = NodeRecord::new(&NodeInfo::new(id), instance).to_json();
    put(f, rev, &node_key(P, id), &value)
}

fn intent_value(key: &str, seed: u8, count: u8) -> Vec<u8> {
    let intent = Intent {
        kind: "echo".into(),
        seed: [seed; 32],
        replica_count: count,
        strategy: Strategy::RoundRobin,
    };
    encode_intent(&ClusterSecret::new(SECRET), key, &intent)
}

fn intent(f: &mut Feed, rev: i64, seed: u8, count: u8) -> u32 {
    let gid = group_id_of(&[seed; 32]);
    let key = group_key(P, gid);
    put(f, rev, &key, &intent_value(&key, seed, count));
    gid
}

fn marker(f: &mut Feed, rev: i64, id: u64) {
    let value = serde_json::to_vec(&super::super::schema::FailureMarker::new(rev - 1)).unwrap();
    put(f, rev, &failed_key(P, id), &value);
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
    // Removing the intent removes the group.
    f.apply(6, group_key(P, gid).as_bytes(), None);
    assert!(f.group(gid).is_none());
    assert_eq!(
        group.route_event(&crate::RequestContext::new()),
        Err(crate::GroupError::Removed)
    );
}

#[test]
fn an_intent_that_cannot_be_placed_waits_for_nodes() {
    let mut f = feed(None);
    node(&mut f, 1, 1, "a");
    let gid = intent(&mut f, 2, 2, 2);
    assert!(f.group(gid).is_none());
    assert!(f
        .published
        .rejection(gid)
        .unwrap()
        .contains("placement failed"));
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
    let effects = f.apply(5, node_key(P, victim).as_bytes(), None);
    assert_eq!(
        effects,
        vec![Effect::NodeVanished {
            node: victim,
            revision: 5
        }]
    );
    assert!(
        group.replicas().iter().any(|m| m.node_id == victim),
        "no failover before the marker"
    );
    marker(&mut f, 6, victim);
    assert!(group
        .replicas()
        .iter()
        .all(|m| m.node_id != victim && m.healthy));
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
    f.apply(5, node_key(P, victim).as_bytes(), None);
    node(&mut f, 6, victim, "restarted");
    // A late marker (written before the node was seen back) is ignored.
    marker(&mut f, 7, victim);
    assert_eq!(f.group(gid).unwrap().replicas(), before);
}

#[test]
fn repeated_events_are_skipped_and_bad_values_counted_never_applied() {
    let mut f = feed(None);
    node(&mut f, 1, 1, "a");
    node(&mut f, 1, 1, "a");
    assert_eq!(f.stats.duplicates_skipped, 1);
    put(&mut f, 2, &node_key(P, 2), b"{not json");
    put(&mut f, 3, "/rr/whatever/1", b"{}");
    put(
        &mut f,
        4,
        &node_key(P, 3),
        br#"{"schema":1,"id":4,"weight":1,"instance":"x"}"#,
    );
    put(
        &mut f,
        5,
        &node_key(P, 5),
        br#"{"schema":9,"id":5,"weight":1,"instance":"x"}"#,
    );
    // A sealed seed moved under another group's key does not open.
    let gid = group_id_of(&[9; 32]);
    let moved = intent_value(&group_key(P, gid), 9, 1);
    put(&mut f, 6, &group_key(P, gid + 1), &moved);
    assert_eq!(f.stats.malformed, 3);
    assert_eq!(f.stats.unknown_version, 1);
    assert_eq!(f.stats.unopenable, 1);
    assert_eq!(
        f.runtime.roster_digest(),
        DaemonRuntime::new([])
            .roster_digest()
            .map(|_| { f.runtime.roster_digest().unwrap() })
    );
    assert!(f.groups.is_empty());
}

#[test]
fn the_wrong_secret_applies_nothing_and_says_so() {
    let mut f = feed_with(None, &options().with_secret([8; 32]));
    for id in 1..=2 {
        node(&mut f, id as i64, id, "a");
    }
    let gid = intent(&mut f, 3, 5, 2);
    assert!(f.group(gid).is_none());
    assert_eq!(f.stats.unopenable, 1);
}

#[test]
fn another_process_claiming_our_node_id_is_reported() {
    let mut f = feed(Some(1));
    node(&mut f, 1, 1, "instance-1");
    assert_eq!(f.stats.duplicate_claims, 0);
    node(&mut f, 2, 1, "intruder");
    assert_eq!(f.stats.duplicate_claims, 1);
}

type Script = Vec<(i64, String, Option<Vec<u8>>)>;

/// A history: 4 nodes, 6 groups, node 1 failing and returning, rescales.
fn script() -> Script {
    let mut events = Script::new();
    let mut push = |key: String, value: Option<Vec<u8>>| {
        let rev = events.len() as i64 + 1;
        events.push((rev, key, value));
    };
    for id in 1..=4 {
        push(
            node_key(P, id),
            Some(NodeRecord::new(&NodeInfo::new(id), "a").to_json()),
        );
    }
    let group = |seed: u8, count: u8| {
        let key = group_key(P, group_id_of(&[seed; 32]));
        let value = intent_value(&key, seed, count);
        (key, Some(value))
    };
    for seed in 1..=6 {
        let (k, v) = group(seed, 2);
        push(k, v);
    }
    push(node_key(P, 1), None);
    let marker = serde_json::to_vec(&super::super::schema::FailureMarker::new(11)).unwrap();
    push(failed_key(P, 1), Some(marker));
    for round in 0..24u8 {
        if round == 12 {
            push(
                node_key(P, 1),
                Some(NodeRecord::new(&NodeInfo::new(1), "b").to_json()),
            );
        }
        let (k, v) = group(1 + round % 6, 2 + round % 2);
        push(k, v);
    }
    events
}

/// Applies the events of `script` past revision `after`.
fn play(f: &mut Feed, script: &Script, after: i64) -> Vec<Effect> {
    let mut effects = Vec::new();
    for (rev, key, value) in script.iter().filter(|(rev, ..)| *rev > after) {
        effects.extend(f.apply(*rev, key.as_bytes(), value.as_deref()));
    }
    effects
}

#[test]
fn a_feed_restored_from_a_checkpoint_agrees_with_one_that_replayed_everything() {
    let script = script();
    let mut a = feed(Some(2));
    let effects = play(&mut a, &script, 0);
    let checkpoints: Vec<(String, Vec<u8>, bool)> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::WriteCheckpoint {
                key,
                value,
                designated,
            } => Some((key, value, designated)),
            Effect::NodeVanished { .. } => None,
        })
        .collect();
    assert_eq!(checkpoints.len(), 3, "revisions 9, 19, 29");
    // Node 1 is gone at revision 19, so node 2 writes that checkpoint only.
    let designated: Vec<bool> = checkpoints.iter().map(|c| c.2).collect();
    assert_eq!(designated, [false, true, false]);
    assert_eq!(a.stats.checkpoints_written, 1);

    // Another process that replayed everything verifies every checkpoint.
    let mut b = feed(Some(3));
    play(&mut b, &script, 0);
    for (i, (key, value, _)) in checkpoints.iter().enumerate() {
        b.apply(100 + i as i64, key.as_bytes(), Some(value));
    }
    assert_eq!(b.stats.checkpoints_verified, 3);
    assert_eq!(b.stats.checkpoint_mismatches, 0);

    // A joiner restores the middle one and replays only what follows.
    let (key, value, _) = &checkpoints[1];
    let revision: i64 = key.rsplit('/').next().unwrap().parse().unwrap();
    let checkpoint = super::super::checkpoint::load_checkpoint(
        Some(&ClusterSecret::new(SECRET)),
        key,
        revision,
        value,
    )
    .unwrap();
    let mut c = feed(Some(4));
    c.restore(checkpoint).unwrap();
    assert_eq!(c.stats.restored_from, revision);
    play(&mut c, &script, revision);
    assert_eq!(c.runtime.roster_digest(), a.runtime.roster_digest());
    for (gid, group) in &a.groups {
        assert_eq!(c.group(*gid).unwrap().replicas(), group.replicas());
    }
    // It verifies the later checkpoint too.
    let (key, value, _) = &checkpoints[2];
    c.apply(200, key.as_bytes(), Some(value));
    assert_eq!(c.stats.checkpoints_verified, 1);
}
