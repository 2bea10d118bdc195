//! Joining at any time: a process that joins or restarts after etcd
//! compacted the history holds exactly the rosters the others hold, and
//! its join time does not grow with the history (issue 14, point 1).

mod cluster_support;

use std::time::{Duration, Instant};

use cluster_support::*;
use replica_router::cluster::{ClusterError, ClusterRuntime};
use replica_router::*;
use replica_router_testkit::etcd::{EtcdConfig, LocalEtcd};
use replica_router_testkit::support::*;

/// Checkpoints every 50 revisions in these tests (every process of a
/// cluster must use the same interval).
const EVERY: i64 = 50;

/// Revisions etcd keeps when it compacts: more than `EVERY`, as a
/// checkpoint interval needs.
const RETENTION: i64 = 2 * EVERY;

#[test]
#[ignore = "entry point of the node processes the other tests start"]
fn cluster_node_process() {
    node_process_main();
}

fn compacting_etcd() -> LocalEtcd {
    LocalEtcd::start_with(EtcdConfig {
        auto_compaction: Some(("revision".into(), RETENTION.to_string())),
        ..EtcdConfig::default()
    })
    .unwrap()
}

fn observe(etcd: &LocalEtcd, prefix: &str) -> ClusterRuntime {
    ClusterRuntime::observe(options_at(&etcd.endpoint(), prefix, 0, EVERY), register).unwrap()
}

/// Rescales the groups `rounds` times, each a revision of its own.
fn rescale(observer: &ClusterRuntime, groups: &[u32], rounds: usize) {
    for round in 0..rounds {
        let gid = groups[round % groups.len()];
        observer
            .scale_group(gid, 2 + (round / groups.len()) as u8 % 2)
            .unwrap();
    }
}

/// The scenario: 4 nodes, 6 groups, node 1 leaving and returning,
/// 120 rescales, then a compaction; then a process joins.
#[test]
fn a_process_joining_after_compaction_holds_exactly_the_rosters_of_the_others() {
    let etcd = compacting_etcd();
    let prefix = "/compacted";
    let mut nodes: Vec<Node> = (1..=4)
        .map(|id| Node::start_with(&etcd, prefix, id, 0, EVERY))
        .collect();
    let observer = observe(&etcd, prefix);
    eventually(20, "four nodes joined", || {
        observer
            .spawn_group("echo", [1; 32], 3, Strategy::ConsistentHash)
            .is_ok()
    });
    let mut groups = vec![group_id_of([1; 32])];
    for seed in 2..=6u8 {
        let strategy = Strategy::ALL[seed as usize];
        let g = observer
            .spawn_group("echo", [seed; 32], 3, strategy)
            .unwrap();
        groups.push(g.group_id());
    }
    // Node 1 leaves (SIGKILL: its replicas fail over) and returns.
    nodes[0].kill();
    eventually(5, "node 1 failed everywhere", || {
        observer
            .groups()
            .iter()
            .all(|g| g.replicas().iter().all(|m| m.node_id != 1))
    });
    nodes[0] = Node::start_with(&etcd, prefix, 1, 0, EVERY);
    eventually(15, "node 1 back", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    rescale(&observer, &groups, 120);
    eventually(10, "converged before the compaction", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    let compacted = compact_keeping(&etcd.endpoint(), RETENTION);

    // A new observer and a restarted node both start from a checkpoint.
    let started = Instant::now();
    let joiner = observe(&etcd, prefix);
    let join_time = started.elapsed();
    let restored = joiner.status().feed.restored_from;
    assert!(
        restored > 0 && restored + 1 >= compacted,
        "started from checkpoint {restored}"
    );
    nodes[1].kill();
    nodes[1] = Node::start_with(&etcd, prefix, 2, 0, EVERY);
    eventually(15, "every process converged after the joins", || {
        converged(&joiner, &nodes.iter().collect::<Vec<_>>())
            && joiner.status().digest == observer.status().digest
    });
    for gid in &groups {
        assert_eq!(
            joiner.group(*gid).unwrap().replicas(),
            observer.group(*gid).unwrap().replicas(),
            "group {gid:#x}"
        );
    }
    // Later changes keep them equal.
    rescale(&observer, &groups, 12);
    eventually(10, "converged after more changes", || {
        converged(&joiner, &nodes.iter().collect::<Vec<_>>())
    });
    // Others verified the checkpoints; nobody disagreed.
    let verified: u64 = nodes
        .iter()
        .filter_map(|n| n.status())
        .map(|s| s.verified)
        .sum();
    let mismatches: u64 = nodes
        .iter()
        .filter_map(|n| n.status())
        .map(|s| s.mismatches)
        .sum();
    assert!(verified > 0 || observer.status().feed.checkpoints_verified > 0);
    assert_eq!(mismatches + observer.status().feed.checkpoint_mismatches, 0);
    assert_eq!(joiner.status().feed.checkpoint_mismatches, 0);
    eprintln!("join after compaction: {join_time:?} from checkpoint {restored}");
}

#[test]
fn join_time_does_not_grow_with_the_history() {
    let etcd = compacting_etcd();
    let prefix = "/age";
    let node = Node::start_with(&etcd, prefix, 1, 0, EVERY);
    let observer = observe(&etcd, prefix);
    eventually(20, "node joined", || {
        observer
            .spawn_group("echo", [1; 32], 1, Strategy::RoundRobin)
            .is_ok()
    });
    let groups: Vec<u32> = (2..=20u8)
        .map(|s| {
            let g = observer.spawn_group("echo", [s; 32], 1, Strategy::RoundRobin);
            g.unwrap().group_id()
        })
        .collect();
    let join = || {
        let started = Instant::now();
        let joiner = observe(&etcd, prefix);
        (started.elapsed(), joiner.status().feed)
    };
    let (young, young_feed) = join();
    let scale = |rounds: usize| {
        for round in 0..rounds {
            observer
                .scale_group(groups[round % groups.len()], 1)
                .unwrap();
        }
    };
    scale(1_500);
    eventually(10, "the node caught up", || converged(&observer, &[&node]));
    let (old, old_feed) = join();
    eprintln!("join: young cluster {young:?} ({young_feed:?}), old cluster {old:?} ({old_feed:?})");
    assert!(old_feed.restored_from > 0);
    assert!(
        old_feed.events_applied <= 2 * EVERY as u64,
        "replayed {} events past the checkpoint",
        old_feed.events_applied
    );
    assert!(
        old <= young + Duration::from_secs(1),
        "join took {old:?} on an old cluster, {young:?} on a young one"
    );
}

#[test]
fn a_joiner_with_no_usable_checkpoint_after_compaction_gets_a_typed_error() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/nocheckpoint";
    let observer = observe(&etcd, prefix);
    // No node: no checkpoint writer, and a few changes to compact away.
    let (endpoint, p) = (etcd.endpoint(), prefix.to_owned());
    with_etcd(&endpoint, |mut c| async move {
        for i in 0..5 {
            c.put(format!("{p}/strange/{i}"), "x", None).await.unwrap();
        }
    });
    compact_keeping(&endpoint, 0);
    drop(observer);
    let started = Instant::now();
    let err =
        ClusterRuntime::observe(options_at(&endpoint, prefix, 0, EVERY), register).unwrap_err();
    assert!(
        matches!(err, ClusterError::HistoryCompacted { .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
