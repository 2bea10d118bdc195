//! Regression (found by the model-based tests, `tests/model.rs`): a member
//! on a node of weight 0 gets no share of the smooth weighted round-robin
//! schedule, and `WeightedRoundRobin` and `Adaptive` only ever picked from
//! that schedule. When it was the only one carrying a required tag they
//! returned `NoHealthyMember` although a healthy member admitted the request.
//! Weight 0 means drained: a last resort, not excluded, in every strategy.
//! A zone preference does not override it (issue 18): a weighted member out
//! of the zone is taken before a drained one in it.

use replica_router::*;
use replica_router_testkit::support::*;

const WEIGHTED_SCHEDULES: [Strategy; 2] = [Strategy::WeightedRoundRobin, Strategy::Adaptive];

fn origin_on(group: &ReplicaGroup, node: u64) -> u64 {
    let member = member_on(group, node);
    member.expect("a member on the node").origin_hash
}

#[test]
fn zone_preference_does_not_pick_a_drained_member_over_a_weighted_one() {
    for (seed, strategy) in (80..).zip(WEIGHTED_SCHEDULES) {
        let rt = runtime_on([
            NodeInfo::new(1).with_zone("z0"),
            NodeInfo::new(2).with_zone("z1").with_weight(0),
        ]);
        let group = ReplicaGroup::spawn(&rt, "echo", config(2, seed, strategy)).unwrap();
        let weighted = origin_on(&group, 1);
        let mut router = group.router();
        for ctx in [RequestContext::new().with_zone("z1"), RequestContext::new()] {
            for _ in 0..4 {
                assert_eq!(group.route_event(&ctx), Ok(weighted), "{strategy:?}");
                assert_eq!(router.route(&ctx), Ok(weighted), "{strategy:?}");
            }
        }
        // Once the weighted member is gone, the drained one takes the traffic.
        rt.node_failed(1).unwrap();
        let drained = origin_on(&group, 2);
        assert_eq!(
            router.route(&RequestContext::new().with_zone("z1")),
            Ok(drained)
        );
    }
}

#[test]
fn a_required_tag_carried_only_by_a_weight_zero_member_is_routable() {
    for (seed, strategy) in (82..).zip(WEIGHTED_SCHEDULES) {
        let rt = runtime_on([
            NodeInfo::new(1),
            NodeInfo::new(2).with_tag("t").with_weight(0),
            NodeInfo::new(3).with_tag("t").with_weight(0),
        ]);
        let group = ReplicaGroup::spawn(&rt, "echo", config(3, seed, strategy)).unwrap();
        let tagged = [origin_on(&group, 2), origin_on(&group, 3)];
        let ctx = RequestContext::new().require_tag("t");
        let picks: Vec<u64> = (0..4).map(|_| group.route_event(&ctx).unwrap()).collect();
        assert!(picks.iter().all(|p| tagged.contains(p)), "{strategy:?}");
        // Last-resort members still take turns.
        assert!(
            tagged.iter().all(|t| picks.contains(t)),
            "{strategy:?}: {picks:x?}"
        );
    }
}
