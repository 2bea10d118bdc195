//! Guarantees 4, 8 (removed members), 9 and 14 of the crate docs: growing and shrinking.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

fn indices(g: &ReplicaGroup) -> Vec<u8> {
    g.replicas().iter().map(|m| m.index).collect()
}

#[test]
fn shrink_removes_highest_indices_first_and_unregisters_them() {
    let rt = runtime(8, 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    rt.register_factory("drop", move || Box::new(DropCounter(Arc::clone(&d))))
        .unwrap();
    let g = ReplicaGroup::spawn(&rt, "drop", config(6, 1, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    g.scale_to(3).unwrap();
    let after = g.replicas();
    assert_eq!(
        after,
        before[..3].to_vec(),
        "the lowest indices stay, untouched"
    );
    assert_eq!(g.replica_count(), 3);
    assert_eq!(g.healthy_count(), 3);
    for m in &before[3..] {
        assert_eq!(
            rt.deliver(m.origin_hash, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(m.origin_hash)),
            "removed replica {} must be unregistered",
            m.index
        );
    }
    for m in &after {
        rt.deliver(m.origin_hash, &Event::new("x")).unwrap();
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "removed daemons are released"
    );
    g.scale_to(1).unwrap();
    assert_eq!(g.replicas(), before[..1].to_vec());
    rt.shutdown();
}

#[test]
fn grow_adds_the_next_indices_on_free_nodes() {
    let rt = runtime(8, 2);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 2, Strategy::RoundRobin)).unwrap();
    let before = g.replicas();
    g.scale_to(7).unwrap();
    let after = g.replicas();
    assert_eq!(after[..3].to_vec(), before, "existing members do not move");
    assert_eq!(indices(&g), (0..7).collect::<Vec<u8>>());
    let nodes: BTreeSet<u64> = after.iter().map(|m| m.node_id).collect();
    assert_eq!(nodes.len(), 7, "members on distinct nodes");
    for m in &after {
        assert_eq!(m.origin_hash, origin(2, m.index));
        assert!(m.healthy);
        rt.deliver(m.origin_hash, &Event::new("x")).unwrap();
    }
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn regrowth_after_shrink_reuses_the_same_identities() {
    let rt = runtime(6, 3);
    let g = ReplicaGroup::spawn(&rt, "echo", config(6, 3, Strategy::Random)).unwrap();
    let full: Vec<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    g.scale_to(2).unwrap();
    g.scale_to(6).unwrap();
    let again: Vec<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    assert_eq!(again, full);
    rt.shutdown();
}

#[test]
fn kind_is_pinned_for_growth_and_replacement() {
    let rt = runtime(8, 1);
    let (made_a, made_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (seen_a, seen_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    {
        let (m, s) = (Arc::clone(&made_a), Arc::clone(&seen_a));
        rt.register_factory("a", move || {
            m.fetch_add(1, Ordering::SeqCst);
            Box::new(Counting(Arc::clone(&s)))
        })
        .unwrap();
        let (m, s) = (Arc::clone(&made_b), Arc::clone(&seen_b));
        rt.register_factory("b", move || {
            m.fetch_add(1, Ordering::SeqCst);
            Box::new(Counting(Arc::clone(&s)))
        })
        .unwrap();
    }
    let g = ReplicaGroup::spawn(&rt, "a", config(2, 4, Strategy::RoundRobin)).unwrap();
    assert_eq!(g.kind(), "a");
    g.scale_to(4).unwrap();
    let replaced = rt.node_failed(g.replicas()[0].node_id).unwrap();
    assert_eq!(replaced, 1);
    assert_eq!(
        made_a.load(Ordering::SeqCst),
        5,
        "2 spawned + 2 grown + 1 replacement"
    );
    assert_eq!(made_b.load(Ordering::SeqCst), 0);
    for m in g.replicas() {
        rt.deliver(m.origin_hash, &Event::new("x")).unwrap();
    }
    assert_eq!(seen_a.load(Ordering::SeqCst), 4);
    assert_eq!(seen_b.load(Ordering::SeqCst), 0);
    assert_eq!(g.kind(), "a");
    rt.shutdown();
}

#[test]
fn replicas_are_ordered_by_index() {
    let rt = runtime(10, 3);
    let g = ReplicaGroup::spawn(&rt, "echo", config(5, 5, Strategy::RoundRobin)).unwrap();
    assert_eq!(indices(&g), vec![0, 1, 2, 3, 4]);
    g.scale_to(9).unwrap();
    assert_eq!(indices(&g), (0..9).collect::<Vec<u8>>());
    // Fail the node of a middle member and of the last member: order holds.
    rt.node_failed(g.replicas()[4].node_id).unwrap();
    rt.node_failed(g.replicas()[8].node_id).unwrap();
    assert_eq!(indices(&g), (0..9).collect::<Vec<u8>>());
    g.scale_to(6).unwrap();
    assert_eq!(indices(&g), (0..6).collect::<Vec<u8>>());
    for (i, m) in g.replicas().iter().enumerate() {
        assert_eq!(m.origin_hash, origin(5, i as u8));
    }
    rt.shutdown();
}

#[test]
fn scale_failure_leaves_roster_exactly_as_it_was() {
    let rt = runtime(4, 2);
    let created = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&created);
    rt.register_factory("count-made", move || {
        c.fetch_add(1, Ordering::SeqCst);
        Box::new(Echo)
    })
    .unwrap();
    let g = ReplicaGroup::spawn(&rt, "count-made", config(3, 6, Strategy::ConsistentHash)).unwrap();
    let (replicas, epoch, term, health) = (g.replicas(), g.epoch(), g.term(), g.health());
    let err = g.scale_to(6).unwrap_err();
    assert!(matches!(err, GroupError::PlacementFailed(_)), "{err:?}");
    assert_eq!(g.replicas(), replicas);
    assert_eq!(g.epoch(), epoch, "a failed command publishes nothing");
    assert_eq!(g.term(), term);
    assert_eq!(g.health(), health);
    for i in 3..6 {
        let o = origin(6, i);
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o)),
            "replica {i} of the failed growth must not be registered"
        );
    }
    // Node 4 was not charged for the failed growth, and it is still free for
    // this group: growing by one lands there.
    g.scale_to(4).unwrap();
    assert_eq!(g.replicas()[3].node_id, 4);
    assert!(created.load(Ordering::SeqCst) >= 4);
    rt.shutdown();
}

#[test]
fn routing_never_returns_a_removed_replica_after_scale_to_returns() {
    let rt = runtime(12, 3);
    for strategy in Strategy::ALL {
        let seed_byte = 10 + strategy as u8;
        let g = ReplicaGroup::spawn(&rt, "echo", config(12, seed_byte, strategy)).unwrap();
        let mut router = g.router();
        // Warm the router and the per-thread cache on the full roster.
        for k in 0..64u32 {
            let ctx = RequestContext::new().with_routing_key(k.to_le_bytes());
            router.route(&ctx).unwrap();
            g.route_event(&ctx).unwrap();
        }
        for n in [11u8, 7, 9, 3, 1, 5, 2, 12, 4] {
            g.scale_to(n).unwrap();
            let allowed: BTreeSet<u64> = (0..n).map(|i| origin(seed_byte, i)).collect();
            for k in 0..300u32 {
                let ctx = if k % 3 == 0 {
                    RequestContext::new()
                } else {
                    RequestContext::new().with_routing_key(k.to_le_bytes())
                };
                let a = g.route_event(&ctx).unwrap();
                let b = router.route(&ctx).unwrap();
                assert!(
                    allowed.contains(&a),
                    "{strategy:?} route_event gave a removed replica at n={n}"
                );
                assert!(
                    allowed.contains(&b),
                    "{strategy:?} Router gave a removed replica at n={n}"
                );
                rt.deliver(a, &Event::new("x")).unwrap();
            }
        }
    }
    rt.shutdown();
}

#[test]
fn route_event_on_more_groups_than_the_thread_cache_holds_stays_correct() {
    // route_event caches 8 groups per thread; 20 interleaved groups evict
    // each other constantly and must still route only to their own members.
    let rt = runtime(6, 2);
    let groups: Vec<ReplicaGroup> = (0..20u8)
        .map(|i| {
            ReplicaGroup::spawn(&rt, "echo", config(3, 100 + i, Strategy::RoundRobin)).unwrap()
        })
        .collect();
    for round in 0..4u8 {
        for (i, g) in groups.iter().enumerate() {
            if (i + round as usize) % 3 == 0 {
                g.scale_to(1 + (round % 3) + 1).unwrap();
            }
        }
        for _ in 0..50 {
            for (i, g) in groups.iter().enumerate() {
                let seed_byte = 100 + i as u8;
                let o = g.route_event(&RequestContext::new()).unwrap();
                let own: BTreeSet<u64> = (0..g.replica_count())
                    .map(|j| origin(seed_byte, j))
                    .collect();
                assert!(
                    own.contains(&o),
                    "group {i} routed outside its current members"
                );
            }
        }
    }
    rt.shutdown();
}
