//! Removing a group (guarantee 15 of the crate docs, issue 16): one writer change after
//! which the group routes nowhere, takes no change, delivers nothing and is
//! untouched by node failures, and its seed is free again; handles can be
//! had again for live groups.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn after_remove_every_route_and_every_change_is_removed() {
    let rt = runtime(4, 2);
    for (seed, strategy) in (1..).zip(Strategy::ALL) {
        let group = ReplicaGroup::spawn(&rt, "echo", config(3, seed, strategy)).unwrap();
        let mut router = group.router();
        let ctx = RequestContext::new().with_routing_key("k");
        router.route(&ctx).unwrap();
        group.route_event(&ctx).unwrap();
        assert_eq!(group.remove(), Ok(()));
        assert_eq!(router.route(&ctx), Err(GroupError::Removed), "{strategy:?}");
        assert_eq!(group.route_event(&ctx), Err(GroupError::Removed));
        assert_eq!(
            group.dispatch(&ctx, &Event::new("x")),
            Err(DispatchError::Route(GroupError::Removed))
        );
        assert_eq!(
            router.dispatch(&ctx, &Event::new("x")),
            Err(DispatchError::Route(GroupError::Removed))
        );
        assert_eq!(group.scale_to(2), Err(GroupError::Removed));
        assert_eq!(group.on_node_failure(1), Err(GroupError::Removed));
        assert_eq!(group.remove(), Err(GroupError::Removed), "removing twice");
        group.on_node_recovery(1);
        assert_eq!(group.replicas(), vec![]);
        assert_eq!(group.replica_count(), 0);
        assert_eq!(group.health(), GroupHealth::Dead);
        assert!(group.stats().is_empty());
    }
    rt.shutdown();
}

#[test]
fn a_removed_groups_replicas_are_unregistered_dropped_and_untouched_by_failures() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = runtime(4, 1);
    let d = Arc::clone(&drops);
    rt.register_factory("counted", move || Box::new(DropCounter(Arc::clone(&d))))
        .unwrap();
    let group = ReplicaGroup::spawn(&rt, "counted", config(3, 40, Strategy::RoundRobin)).unwrap();
    let other = ReplicaGroup::spawn(&rt, "echo", config(3, 41, Strategy::RoundRobin)).unwrap();
    let members = group.replicas();
    group.remove().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 3, "every daemon dropped");
    for m in &members {
        assert_eq!(
            rt.deliver(m.origin_hash, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(m.origin_hash))
        );
    }
    // A node the removed group used fails: only the live group is touched.
    let node = members[0].node_id;
    let expected = usize::from(member_on(&other, node).is_some());
    assert_eq!(rt.node_failed(node), Ok(expected));
    assert_eq!(rt.node_recovered(node).map(|_| ()), Ok(()));
    assert_eq!(group.replicas(), vec![]);
    rt.shutdown();
}

#[test]
fn a_removed_seed_spawns_again_with_the_same_identities() {
    let rt = runtime(4, 1);
    let first = ReplicaGroup::spawn(&rt, "echo", config(3, 42, Strategy::ConsistentHash)).unwrap();
    let identities: Vec<(u64, [u8; 32])> = first
        .replicas()
        .iter()
        .map(|m| (m.origin_hash, m.entity_id_bytes))
        .collect();
    assert!(matches!(
        ReplicaGroup::spawn(&rt, "echo", config(3, 42, Strategy::RoundRobin)),
        Err(GroupError::InvalidConfig(_))
    ));
    first.remove().unwrap();
    let again = ReplicaGroup::spawn(&rt, "echo", config(3, 42, Strategy::RoundRobin)).unwrap();
    let same: Vec<(u64, [u8; 32])> = again
        .replicas()
        .iter()
        .map(|m| (m.origin_hash, m.entity_id_bytes))
        .collect();
    assert_eq!(same, identities);
    // The old handle stays removed; the new group routes.
    assert_eq!(
        first.route_event(&RequestContext::new()),
        Err(GroupError::Removed)
    );
    assert!(again.route_event(&RequestContext::new()).is_ok());
    rt.shutdown();
}

#[test]
fn a_group_whose_handles_were_dropped_can_be_found_again_and_removed() {
    let rt = runtime(4, 1);
    let ids: Vec<u32> = (50..53u8)
        .map(|s| {
            ReplicaGroup::spawn(&rt, "echo", config(2, s, Strategy::RoundRobin))
                .unwrap()
                .group_id()
        })
        .collect();
    // Every handle is gone; the groups live on.
    let found: Vec<u32> = rt.groups().iter().map(ReplicaGroup::group_id).collect();
    assert_eq!(found, ids, "in spawn order");
    let g = rt.group(ids[1]).expect("found by id");
    assert_eq!(g.replica_count(), 2);
    assert_eq!(g.kind(), "echo");
    assert_eq!(g.strategy(), Strategy::RoundRobin);
    assert!(g.route_event(&RequestContext::new()).is_ok());
    g.remove().unwrap();
    assert!(rt.group(ids[1]).is_none());
    assert_eq!(rt.groups().len(), 2);
    assert!(rt.group(0xdead_beef).is_none(), "an unknown id");
    rt.shutdown();
    assert!(rt.groups().is_empty());
}

#[test]
fn two_handles_of_one_group_agree_it_is_removed() {
    let rt = runtime(3, 1);
    let a = ReplicaGroup::spawn(&rt, "echo", config(2, 60, Strategy::RoundRobin)).unwrap();
    let b = rt.group(a.group_id()).unwrap();
    b.remove().unwrap();
    assert_eq!(a.scale_to(3), Err(GroupError::Removed));
    assert_eq!(a.remove(), Err(GroupError::Removed));
    assert_eq!(
        a.route_event(&RequestContext::new()),
        Err(GroupError::Removed)
    );
    rt.shutdown();
}
