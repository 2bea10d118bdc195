//! Regression (found by the model-based tests, `tests/model.rs`): a member
//! on a node of weight 0 gets no share of the smooth weighted round-robin
//! schedule, and `WeightedRoundRobin` and `Adaptive` only ever picked from
//! that schedule. When such a member was the only one in the preferred zone
//! they routed out of the zone (DESIGN 12), and when it was the only one
//! carrying a required tag they returned `NoHealthyMember` although a healthy
//! member admitted the request (DESIGN 8, 12). Weight 0 means "never
//! preferred", as in `WeightedRandom` and `WeightedLeastConnections`: a last
//! resort, not excluded.

use replica_router::*;
use replica_router_testkit::support::*;

const WEIGHTED_SCHEDULES: [Strategy; 2] = [Strategy::WeightedRoundRobin, Strategy::Adaptive];

fn origin_on(group: &ReplicaGroup, node: u64) -> u64 {
    let member = member_on(group, node);
    member.expect("a member on the node").origin_hash
}

#[test]
fn zone_preference_reaches_a_weight_zero_member() {
    for (seed, strategy) in (80..).zip(WEIGHTED_SCHEDULES) {
        let rt = runtime_on([
            NodeInfo::new(1).with_zone("z0"),
            NodeInfo::new(2).with_zone("z1").with_weight(0),
        ]);
        let group = ReplicaGroup::spawn(&rt, "echo", config(2, seed, strategy)).unwrap();
        let local = origin_on(&group, 2);
        let ctx = RequestContext::new().with_zone("z1");
        let mut router = group.router();
        for _ in 0..4 {
            assert_eq!(group.route_event(&ctx), Ok(local), "{strategy:?}");
            assert_eq!(router.route(&ctx), Ok(local), "{strategy:?}");
        }
        // Without a preference, weight 0 is never preferred.
        let other = origin_on(&group, 1);
        for _ in 0..4 {
            assert_eq!(
                router.route(&RequestContext::new()),
                Ok(other),
                "{strategy:?}"
            );
        }
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
