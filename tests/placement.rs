//! Guarantees 1 and 3 of the crate docs: spread placement, determinism, requirements, and
//! all-or-nothing failure.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn zero_replicas_is_invalid_config_in_spawn_and_scale_to() {
    let rt = runtime(3, 1);
    let err = ReplicaGroup::spawn(&rt, "echo", config(0, 1, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::InvalidConfig(_)), "{err:?}");
    let g = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
    let before = (g.replicas(), g.epoch());
    let err = g.scale_to(0).unwrap_err();
    assert!(matches!(err, GroupError::InvalidConfig(_)), "{err:?}");
    assert_eq!(
        (g.replicas(), g.epoch()),
        before,
        "a refused scale changes nothing"
    );
    rt.shutdown();
}

#[test]
fn replicas_of_a_group_go_to_distinct_nodes() {
    let rt = runtime(10, 3);
    let g = ReplicaGroup::spawn(&rt, "echo", config(10, 1, Strategy::RoundRobin)).unwrap();
    let nodes: BTreeSet<u64> = member_nodes(&g).into_iter().collect();
    assert_eq!(nodes.len(), 10);
    // Several groups: each group spreads over distinct nodes on its own.
    let h = ReplicaGroup::spawn(&rt, "echo", config(7, 2, Strategy::RoundRobin)).unwrap();
    let nodes: BTreeSet<u64> = member_nodes(&h).into_iter().collect();
    assert_eq!(nodes.len(), 7);
    rt.shutdown();
}

#[test]
fn placement_prefers_distinct_zones() {
    // The three lowest ids share zone "a"; zones "b" and "c" have one node each.
    let rt = runtime_on([
        NodeInfo::new(1).with_zone("a"),
        NodeInfo::new(2).with_zone("a"),
        NodeInfo::new(3).with_zone("a"),
        NodeInfo::new(4).with_zone("b"),
        NodeInfo::new(5).with_zone("c"),
    ]);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(
        member_nodes(&g),
        vec![1, 4, 5],
        "one replica per zone first"
    );
    // Every zone is now used once, so growth takes the least-loaded,
    // lowest-id nodes left (both in zone "a").
    g.scale_to(5).unwrap();
    assert_eq!(member_nodes(&g), vec![1, 4, 5, 2, 3]);
    rt.shutdown();
}

#[test]
fn placement_spreads_zones_with_round_robin_zone_layout() {
    let rt = runtime(9, 3);
    let g = ReplicaGroup::spawn(&rt, "echo", config(6, 1, Strategy::RoundRobin)).unwrap();
    let zones: Vec<String> = member_nodes(&g).iter().map(|&n| zone_of(n, 3)).collect();
    for z in ["z0", "z1", "z2"] {
        assert_eq!(zones.iter().filter(|x| *x == z).count(), 2, "{zones:?}");
    }
    rt.shutdown();
}

#[test]
fn placement_prefers_least_loaded_node_then_lowest_id() {
    let rt = runtime(4, 1);
    let a = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&a), vec![1, 2], "ties go to the lowest id");
    let b = ReplicaGroup::spawn(&rt, "echo", config(2, 2, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&b), vec![3, 4], "least-loaded nodes first");
    let c = ReplicaGroup::spawn(&rt, "echo", config(3, 3, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&c), vec![1, 2, 3]);
    let d = ReplicaGroup::spawn(&rt, "echo", config(1, 4, Strategy::RoundRobin)).unwrap();
    assert_eq!(
        member_nodes(&d),
        vec![4],
        "node 4 hosts the fewest replicas"
    );
    let e = ReplicaGroup::spawn(&rt, "echo", config(2, 5, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&e), vec![1, 2]);
    // Shrinking releases load: c leaves nodes 2 and 3, so node 3 (hosting
    // only b's member) is then the least loaded.
    c.scale_to(1).unwrap();
    let f = ReplicaGroup::spawn(&rt, "echo", config(1, 6, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&f), vec![3]);
    rt.shutdown();
}

/// Applies one fixed sequence of changes and returns every group's members
/// after each step.
fn scripted_history() -> Vec<Vec<MemberInfo>> {
    let rt = runtime(7, 3);
    let mut history = Vec::new();
    let a = ReplicaGroup::spawn(&rt, "echo", config(3, 1, Strategy::RoundRobin)).unwrap();
    let b = ReplicaGroup::spawn(&rt, "echo", config(4, 2, Strategy::ConsistentHash)).unwrap();
    let snap = |h: &mut Vec<Vec<MemberInfo>>| {
        h.push(a.replicas());
        h.push(b.replicas());
    };
    snap(&mut history);
    a.scale_to(5).unwrap();
    snap(&mut history);
    rt.node_failed(a.replicas()[1].node_id).unwrap();
    snap(&mut history);
    rt.add_node(NodeInfo::new(8).with_zone("z1")).unwrap();
    snap(&mut history);
    b.on_node_failure(b.replicas()[0].node_id).unwrap();
    snap(&mut history);
    rt.node_failed(3).unwrap();
    rt.node_failed(4).unwrap();
    snap(&mut history);
    rt.node_recovered(3).unwrap();
    snap(&mut history);
    b.scale_to(2).unwrap();
    a.scale_to(6).unwrap();
    snap(&mut history);
    let c = ReplicaGroup::spawn(&rt, "echo", config(5, 3, Strategy::Random)).unwrap();
    history.push(c.replicas());
    rt.node_recovered(4).unwrap();
    snap(&mut history);
    history.push(c.replicas());
    rt.shutdown();
    history
}

#[test]
fn placement_is_deterministic_across_runtimes() {
    let first = scripted_history();
    for _ in 0..3 {
        assert_eq!(scripted_history(), first);
    }
}

#[test]
fn placement_honours_daemon_requirements() {
    let rt = runtime_on((1..=6).map(|id| {
        let n = NodeInfo::new(id).with_zone(&zone_of(id, 2));
        if id % 2 == 0 {
            n.with_tag("gpu")
        } else {
            n
        }
    }));
    rt.register_factory("gpu", || Box::new(NeedsTag::new("gpu")))
        .unwrap();
    let g = ReplicaGroup::spawn(&rt, "gpu", config(3, 1, Strategy::RoundRobin)).unwrap();
    let mut nodes = member_nodes(&g);
    nodes.sort_unstable();
    assert_eq!(nodes, vec![2, 4, 6]);
    let err = g.scale_to(4).unwrap_err();
    assert!(matches!(err, GroupError::PlacementFailed(_)), "{err:?}");
    // Failover also honours the requirement: no tagged node free, stays put.
    let replaced = g.on_node_failure(2).unwrap();
    assert!(replaced.is_empty(), "untagged nodes are not eligible");
    rt.add_node(NodeInfo::new(7).with_tag("gpu")).unwrap();
    assert!(
        member_nodes(&g).contains(&7),
        "the stuck member moved to the tagged node"
    );
    assert!(!member_nodes(&g).contains(&2));
    assert_eq!(g.health(), GroupHealth::Healthy);
    // Spawning more than the tagged nodes allow fails.
    let err = ReplicaGroup::spawn(&rt, "gpu", config(5, 2, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::PlacementFailed(_)), "{err:?}");
    rt.shutdown();
}

#[test]
fn placement_failure_leaves_nothing_behind() {
    let rt = runtime(3, 1);
    let created = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (c, d) = (Arc::clone(&created), Arc::clone(&dropped));
    rt.register_factory("drop", move || {
        c.fetch_add(1, Ordering::SeqCst);
        Box::new(DropCounter(Arc::clone(&d)))
    })
    .unwrap();
    let err = ReplicaGroup::spawn(&rt, "drop", config(5, 1, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::PlacementFailed(_)), "{err:?}");
    for i in 0..5 {
        let o = origin(1, i);
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o)),
            "replica {i} must not be registered"
        );
    }
    assert!(format!("{rt:?}").contains("replicas: 0"), "{rt:?}");
    assert_eq!(
        created.load(Ordering::SeqCst),
        dropped.load(Ordering::SeqCst),
        "every daemon created for the failed spawn was released"
    );
    // Nodes were not charged for the failed spawn: placement starts at node 1.
    let other = ReplicaGroup::spawn(&rt, "echo", config(3, 2, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&other), vec![1, 2, 3]);
    // With enough nodes, the same seed spawns fine later.
    rt.add_node(NodeInfo::new(4)).unwrap();
    rt.add_node(NodeInfo::new(5)).unwrap();
    let g = ReplicaGroup::spawn(&rt, "drop", config(5, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(g.replica_count(), 5);
    for i in 0..5 {
        rt.deliver(origin(1, i), &Event::new("x")).unwrap();
    }
    rt.shutdown();
}

#[test]
fn placement_skips_failed_nodes() {
    let rt = runtime(4, 1);
    rt.node_failed(1).unwrap();
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&g), vec![2, 3, 4]);
    let err = ReplicaGroup::spawn(&rt, "echo", config(4, 2, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::PlacementFailed(_)), "{err:?}");
    rt.shutdown();
}

#[test]
fn a_seed_in_use_cannot_spawn_a_second_group() {
    let rt = runtime(6, 1);
    let _g = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
    let err = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::InvalidConfig(_)), "{err:?}");
    rt.shutdown();
}

#[test]
fn placement_does_not_depend_on_the_order_nodes_are_listed() {
    let mut reversed = nodes(6, 3);
    reversed.reverse();
    let mut results = Vec::new();
    for listed in [nodes(6, 3), reversed] {
        let rt = runtime_on(listed);
        let a = ReplicaGroup::spawn(&rt, "echo", config(4, 1, Strategy::RoundRobin)).unwrap();
        let b = ReplicaGroup::spawn(&rt, "echo", config(3, 2, Strategy::RoundRobin)).unwrap();
        rt.node_failed(a.replicas()[0].node_id).unwrap();
        results.push((a.replicas(), b.replicas()));
        rt.shutdown();
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn max_replica_count_255_places_on_255_nodes() {
    let rt = runtime(255, 5);
    let g = ReplicaGroup::spawn(&rt, "echo", config(255, 1, Strategy::RoundRobin)).unwrap();
    let nodes: BTreeSet<u64> = member_nodes(&g).into_iter().collect();
    assert_eq!(nodes.len(), 255);
    assert_eq!(g.replicas()[254].index, 254);
    assert_eq!(g.replicas()[254].origin_hash, origin(1, 254));
    rt.shutdown();
}

#[test]
fn failover_prefers_a_node_in_a_zone_the_group_does_not_use() {
    // Zone a: nodes 1 and 5; zone b: nodes 2 and 4.
    let rt = runtime_on([
        NodeInfo::new(1).with_zone("a"),
        NodeInfo::new(2).with_zone("b"),
        NodeInfo::new(4).with_zone("b"),
        NodeInfo::new(5).with_zone("a"),
    ]);
    let g = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&g), vec![1, 2], "one member per zone");
    rt.node_failed(1).unwrap();
    // The group now uses zone b only (node 2); node 5 in zone a keeps the
    // replicas in distinct zones, node 4 would put both in zone b.
    assert_eq!(member_nodes(&g), vec![5, 2]);
    rt.shutdown();
}
