//! Regression (found by the model-based tests, `tests/model.rs`): shrinking
//! a group re-places its stuck members, and one may move onto the node the
//! removed member just left. The removed member was detached from the node
//! table only after healing, which also detached the healed member: the
//! node no longer listed the group, so a later failure of that node skipped
//! the group and left the member healthy on a failed node (guarantees 5 and 8).

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn member_healed_onto_a_node_freed_by_shrinking_fails_over_with_it() {
    let rt = runtime(3, 1);
    let group = ReplicaGroup::spawn(&rt, "echo", config(3, 71, Strategy::RoundRobin)).unwrap();
    assert_eq!(member_nodes(&group), vec![1, 2, 3]);

    // Node 1 fails with no free node: replica 0 is stuck there, unhealthy.
    assert_eq!(rt.node_failed(1), Ok(0));
    assert!(!group.replicas()[0].healthy);

    // Shrinking removes replica 2 from node 3, and replica 0 moves there.
    group.scale_to(2).unwrap();
    assert_eq!(member_nodes(&group), vec![3, 2]);
    assert_eq!(group.health(), GroupHealth::Healthy);

    // Node 3 fails: replica 0 is on it, so it must be marked unhealthy (no
    // node is free) and never routed to.
    assert_eq!(rt.node_failed(3), Ok(0));
    let replicas = group.replicas();
    assert!(!replicas[0].healthy, "{replicas:?}");
    assert_eq!(
        group.health(),
        GroupHealth::Degraded {
            healthy: 1,
            total: 2
        }
    );
    let mut router = group.router();
    for _ in 0..4 {
        assert_eq!(
            router.route(&RequestContext::new()),
            Ok(replicas[1].origin_hash)
        );
        assert_eq!(
            group.route_event(&RequestContext::new()),
            Ok(replicas[1].origin_hash)
        );
    }

    // And when node 1 comes back, replica 0 moves to it.
    assert_eq!(rt.node_recovered(1), Ok(0));
    assert_eq!(member_nodes(&group), vec![1, 2]);
    assert_eq!(group.health(), GroupHealth::Healthy);
}
