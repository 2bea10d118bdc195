//! Guarantees 5, 6, 7 and 8 of the crate docs: node failure, recovery, group health and
//! routing around failed nodes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn node_failure_replaces_member_with_same_identity_on_a_free_node() {
    let rt = runtime(6, 1);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    rt.register_factory("drop", move || Box::new(DropCounter(Arc::clone(&d))))
        .unwrap();
    let g = ReplicaGroup::spawn(&rt, "drop", config(3, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&g), vec![1, 2, 3]);
    let before = g.replicas();
    let term = g.term();
    assert_eq!(rt.node_failed(2).unwrap(), 1);
    let after = g.replicas();
    assert_eq!(after[1].origin_hash, before[1].origin_hash, "same identity");
    assert_eq!(after[1].entity_id_bytes, before[1].entity_id_bytes);
    assert_eq!(after[1].index, 1);
    assert_eq!(after[1].node_id, 4, "least-loaded lowest-id free node");
    assert!(after[1].healthy);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    assert!(g.term() > term, "term increases on re-placement");
    assert_eq!(g.health(), GroupHealth::Healthy);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the old host was released");
    rt.deliver(after[1].origin_hash, &Event::new("x")).unwrap();
    rt.shutdown();
}

#[test]
fn group_node_failure_returns_the_replaced_indices() {
    let rt = runtime(8, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(4, 2, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    let term = g.term();
    assert_eq!(g.on_node_failure(before[2].node_id).unwrap(), vec![2]);
    let after = g.replicas();
    assert_eq!(after[2].origin_hash, before[2].origin_hash);
    assert_ne!(after[2].node_id, before[2].node_id);
    assert!(after[2].healthy);
    let t1 = g.term();
    assert!(t1 > term);
    assert_eq!(g.on_node_failure(after[0].node_id).unwrap(), vec![0]);
    assert!(g.term() > t1, "term increases on every re-placement");
    rt.shutdown();
}

#[test]
fn runtime_node_failed_counts_replacements_over_all_groups() {
    let rt = runtime(6, 1);
    let a = ReplicaGroup::spawn(&rt, "echo", config(3, 3, Strategy::RoundRobin)).unwrap();
    let b = ReplicaGroup::spawn(&rt, "echo", config(4, 4, Strategy::RoundRobin)).unwrap();
    let shared = member_nodes(&a)
        .into_iter()
        .find(|n| member_nodes(&b).contains(n))
        .expect("the groups share a node");
    assert_eq!(rt.node_failed(shared).unwrap(), 2);
    assert!(!member_nodes(&a).contains(&shared));
    assert!(!member_nodes(&b).contains(&shared));
    assert_eq!(
        rt.node_failed(shared).unwrap(),
        0,
        "nothing left on the node"
    );
    rt.shutdown();
}

#[test]
fn replacement_avoids_failed_nodes_and_nodes_holding_a_member() {
    let rt = runtime(5, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 5, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&g), vec![1, 2, 3]);
    rt.node_failed(4).unwrap(); // the spare most likely to be chosen is gone
    rt.node_failed(1).unwrap();
    assert_eq!(member_nodes(&g), vec![5, 2, 3]);
    let nodes: BTreeSet<u64> = member_nodes(&g).into_iter().collect();
    assert_eq!(nodes.len(), 3, "never two members on one node");
    rt.shutdown();
}

#[test]
fn no_free_node_keeps_slot_registered_and_unhealthy() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 6, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    let term = g.term();
    assert_eq!(rt.node_failed(2).unwrap(), 0, "nothing could be re-placed");
    let m = member_on(&g, 2).expect("the slot stays on its node");
    assert_eq!(m.origin_hash, before[1].origin_hash);
    assert!(!m.healthy);
    assert_eq!(g.term(), term, "nothing was re-placed");
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 2,
            total: 3
        }
    );
    assert_eq!(g.replica_count(), 3);
    assert_eq!(g.healthy_count(), 2);
    // Still registered: delivery reaches it.
    rt.deliver(m.origin_hash, &Event::new("x")).unwrap();
    for _ in 0..50 {
        assert_ne!(
            g.route_event(&RequestContext::new()).unwrap(),
            m.origin_hash
        );
    }
    // Recovery heals it in place.
    assert_eq!(rt.node_recovered(2).unwrap(), 1);
    assert_eq!(g.replicas(), before);
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn added_node_then_scale_to_heals_a_stuck_slot() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 7, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    rt.node_failed(3).unwrap();
    assert!(!g.replicas()[2].healthy);
    let term = g.term();
    rt.add_node(NodeInfo::new(4).with_zone("z0")).unwrap();
    g.scale_to(3).unwrap();
    let after = g.replicas();
    assert_eq!(after[2].node_id, 4);
    assert_eq!(after[2].origin_hash, before[2].origin_hash);
    assert!(after[2].healthy);
    assert_eq!(g.health(), GroupHealth::Healthy);
    assert!(g.term() > term);
    rt.shutdown();
}

#[test]
fn growth_heals_a_stuck_slot_when_capacity_appears() {
    // Capacity appears through add_node; growing in the same breath must both
    // heal the stuck member and place the new one.
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 8, Strategy::RoundRobin)).unwrap();
    rt.node_failed(1).unwrap();
    rt.add_node(NodeInfo::new(4)).unwrap();
    rt.add_node(NodeInfo::new(5)).unwrap();
    g.scale_to(4).unwrap();
    let nodes: BTreeSet<u64> = member_nodes(&g).into_iter().collect();
    assert_eq!(nodes, BTreeSet::from([2, 3, 4, 5]));
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn failed_replacement_factory_keeps_slot_and_scale_to_heals_it_later() {
    let rt = runtime(4, 1);
    let broken = Arc::new(AtomicBool::new(false));
    let b = Arc::clone(&broken);
    rt.register_factory("fragile", move || {
        if b.load(Ordering::SeqCst) {
            panic!("factory is broken right now");
        }
        Box::new(Echo)
    })
    .unwrap();
    let g = ReplicaGroup::spawn(&rt, "fragile", config(3, 9, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    broken.store(true, Ordering::SeqCst);
    assert_eq!(
        rt.node_failed(1).unwrap(),
        0,
        "the replacement could not be created"
    );
    let stuck = &g.replicas()[0];
    assert_eq!(stuck.node_id, 1);
    assert!(!stuck.healthy);
    rt.deliver(stuck.origin_hash, &Event::new("x")).unwrap();
    broken.store(false, Ordering::SeqCst);
    g.scale_to(3).unwrap();
    let after = g.replicas();
    assert_eq!(after[0].node_id, 4);
    assert_eq!(after[0].origin_hash, before[0].origin_hash);
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn unknown_or_empty_node_at_group_level_is_ok_empty() {
    let rt = runtime(5, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 10, Strategy::RoundRobin)).unwrap();
    let (replicas, epoch, term) = (g.replicas(), g.epoch(), g.term());
    assert_eq!(
        g.on_node_failure(999).unwrap(),
        Vec::<u8>::new(),
        "unknown node"
    );
    assert_eq!(
        g.on_node_failure(5).unwrap(),
        Vec::<u8>::new(),
        "known, hosts nothing"
    );
    assert_eq!(g.replicas(), replicas);
    assert_eq!(g.epoch(), epoch, "nothing to publish");
    assert_eq!(g.term(), term);
    g.on_node_recovery(999);
    g.on_node_recovery(5);
    assert_eq!(g.replicas(), replicas);
    rt.shutdown();
}

#[test]
fn runtime_node_failed_or_recovered_of_unknown_node_is_unknown_node() {
    let rt = runtime(3, 1);
    assert_eq!(rt.node_failed(42), Err(RuntimeError::UnknownNode(42)));
    assert_eq!(rt.node_recovered(43), Err(RuntimeError::UnknownNode(43)));
    assert_eq!(rt.node_failed(0), Err(RuntimeError::UnknownNode(0)));
    // Known nodes without members are fine.
    assert_eq!(rt.node_failed(1).unwrap(), 0);
    assert_eq!(rt.node_recovered(1).unwrap(), 0);
    assert_eq!(
        rt.add_node(NodeInfo::new(2)),
        Err(RuntimeError::DuplicateNode(2))
    );
    rt.shutdown();
}

#[test]
fn recovery_re_marks_only_members_still_on_the_node() {
    let rt = runtime(4, 1);
    // a: 3 members on nodes 1-3 (node 4 free); b: 4 members, no free node.
    let a = ReplicaGroup::spawn(&rt, "echo", config(3, 11, Strategy::RoundRobin)).unwrap();
    let b = ReplicaGroup::spawn(&rt, "echo", config(4, 12, Strategy::RoundRobin)).unwrap();
    let a_on_1 = member_on(&a, 1).unwrap();
    let b_on_1 = member_on(&b, 1).unwrap();
    assert_eq!(
        rt.node_failed(1).unwrap(),
        1,
        "only a's member finds a node"
    );
    assert_eq!(a.replicas()[a_on_1.index as usize].node_id, 4);
    assert!(!b.replicas()[b_on_1.index as usize].healthy);
    let a_before = a.replicas();
    assert_eq!(
        rt.node_recovered(1).unwrap(),
        1,
        "only b's member is re-marked"
    );
    assert_eq!(
        a.replicas(),
        a_before,
        "members that moved stay where they are"
    );
    let b_now = &b.replicas()[b_on_1.index as usize];
    assert_eq!(b_now.node_id, 1);
    assert!(b_now.healthy);
    assert_eq!(a.health(), GroupHealth::Healthy);
    assert_eq!(b.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn group_level_recovery_re_marks_its_stuck_member() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 13, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    assert_eq!(g.on_node_failure(2).unwrap(), Vec::<u8>::new());
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 2,
            total: 3
        }
    );
    g.on_node_recovery(2);
    assert_eq!(g.replicas(), before);
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn group_health_is_healthy_degraded_dead_and_no_healthy_member_routes_fail() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 14, Strategy::ConsistentHash)).unwrap();
    let mut router = g.router();
    let keyed = RequestContext::new().with_routing_key("k");
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.node_failed(1).unwrap();
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 2,
            total: 3
        }
    );
    rt.node_failed(2).unwrap();
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 1,
            total: 3
        }
    );
    assert_eq!(g.healthy_count(), 1);
    assert!(router.route(&keyed).is_ok());
    rt.node_failed(3).unwrap();
    assert_eq!(g.health(), GroupHealth::Dead);
    assert_eq!(g.healthy_count(), 0);
    assert_eq!(g.replica_count(), 3);
    for ctx in [
        RequestContext::new(),
        keyed.clone(),
        RequestContext::new().with_session(7),
    ] {
        assert_eq!(g.route_event(&ctx), Err(GroupError::NoHealthyMember));
        assert_eq!(router.route(&ctx), Err(GroupError::NoHealthyMember));
        assert_eq!(g.router().route(&ctx), Err(GroupError::NoHealthyMember));
    }
    rt.node_recovered(2).unwrap();
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 1,
            total: 3
        }
    );
    assert_eq!(router.route(&keyed), Ok(g.replicas()[1].origin_hash));
    rt.node_recovered(1).unwrap();
    rt.node_recovered(3).unwrap();
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn no_healthy_member_for_every_strategy() {
    let rt = runtime(2, 1);
    for (i, s) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(2, 40 + i as u8, s)).unwrap();
        g.on_node_failure(1).unwrap();
        g.on_node_failure(2).unwrap();
        assert_eq!(g.health(), GroupHealth::Dead);
        assert_eq!(
            g.route_event(&RequestContext::new()),
            Err(GroupError::NoHealthyMember)
        );
        assert_eq!(
            g.router().route(&RequestContext::new()),
            Err(GroupError::NoHealthyMember)
        );
    }
    rt.shutdown();
}

#[test]
fn routing_never_returns_a_replica_on_a_failed_node_after_node_failed_returns() {
    for strategy in Strategy::ALL {
        let rt = runtime(6, 2);
        let g = ReplicaGroup::spawn(&rt, "echo", config(6, 15, strategy)).unwrap();
        let mut router = g.router();
        for k in 0..100u32 {
            let ctx = RequestContext::new().with_routing_key(k.to_le_bytes());
            router.route(&ctx).unwrap();
            g.route_event(&ctx).unwrap();
        }
        let mut failed = BTreeSet::new();
        for (step, node) in [3u64, 1, 6, 2, 5].into_iter().enumerate() {
            if step % 2 == 0 {
                rt.node_failed(node).unwrap();
            } else {
                g.on_node_failure(node).unwrap();
            }
            failed.insert(node);
            let forbidden: BTreeSet<u64> = g
                .replicas()
                .iter()
                .filter(|m| failed.contains(&m.node_id))
                .map(|m| m.origin_hash)
                .collect();
            assert_eq!(forbidden.len(), failed.len(), "no spare nodes: all stuck");
            for k in 0..300u32 {
                let ctx = match k % 3 {
                    0 => RequestContext::new(),
                    1 => RequestContext::new().with_routing_key(k.to_le_bytes()),
                    _ => RequestContext::new().with_session(u64::from(k)),
                };
                let a = g.route_event(&ctx).unwrap();
                let b = router.route(&ctx).unwrap();
                assert!(
                    !forbidden.contains(&a),
                    "{strategy:?}: route_event picked a failed node"
                );
                assert!(
                    !forbidden.contains(&b),
                    "{strategy:?}: Router picked a failed node"
                );
            }
        }
        rt.shutdown();
    }
}

#[test]
fn shrinking_heals_a_stuck_member_onto_the_node_it_frees() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 16, Strategy::RoundRobin)).unwrap();
    rt.node_failed(2).unwrap(); // member 1 is stuck: no free node
    assert_eq!(
        g.health(),
        GroupHealth::Degraded {
            healthy: 2,
            total: 3
        }
    );
    // Removing member 2 frees node 3; "scale_to can heal it".
    g.scale_to(2).unwrap();
    assert_eq!(member_nodes(&g), vec![1, 3]);
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}
