//! Regression (issue 18, adversarial testing): `WeightedRandom` routed to
//! members of weight 0. With `require_tag` admitting one node of weight 100
//! and one of weight 0, the weight-0 member got 143–150 of 20,000 routes,
//! because the fallback draw counted weight 0 as 1; the same fallback ran
//! for zone preference and open circuits. Weight 0 now means drained in
//! every strategy: such a member is picked only when no weighted member
//! qualifies.

use replica_router::*;
use replica_router_testkit::support::*;

/// Nodes 1 and 2 carry tag `t`; node 2 and node 3 have weight 0.
fn runtime_with_a_drained_node() -> DaemonRuntime {
    runtime_on([
        NodeInfo::new(1).with_tag("t").with_zone("z1"),
        NodeInfo::new(2)
            .with_tag("t")
            .with_weight(0)
            .with_zone("z2"),
        NodeInfo::new(3).with_weight(0).with_zone("z2"),
    ])
}

#[test]
fn the_tag_filtered_fallback_never_picks_a_drained_member() {
    for (seed, strategy) in (10..).zip(Strategy::ALL) {
        let rt = runtime_with_a_drained_node();
        let group = ReplicaGroup::spawn(&rt, "echo", config(3, seed, strategy)).unwrap();
        let weighted = member_on(&group, 1).unwrap().origin_hash;
        let contexts = [
            RequestContext::new().require_tag("t"),
            RequestContext::new().require_tag("t").with_zone("z2"),
            RequestContext::new().with_zone("z2"),
            RequestContext::new().with_routing_key("k").with_zone("z2"),
            RequestContext::new(),
        ];
        let mut router = group.router();
        for ctx in &contexts {
            for _ in 0..2_000 {
                assert_eq!(router.route(ctx), Ok(weighted), "{strategy:?} {ctx:?}");
            }
            assert_eq!(group.route_event(ctx), Ok(weighted), "{strategy:?} {ctx:?}");
        }
        rt.shutdown();
    }
}

#[test]
fn an_open_circuit_on_the_weighted_member_does_not_send_traffic_to_a_drained_one_that_is_not_last()
{
    // Two weighted members and a drained one: with one weighted circuit
    // open, the other weighted member takes everything.
    for (seed, strategy) in (30..).zip(Strategy::ALL) {
        let rt = runtime_on([
            NodeInfo::new(1),
            NodeInfo::new(2),
            NodeInfo::new(3).with_weight(0),
        ]);
        let group = ReplicaGroup::spawn(&rt, "flaky", config(3, seed, strategy)).unwrap();
        let broken = member_on(&group, 1).unwrap().origin_hash;
        let healthy = member_on(&group, 2).unwrap().origin_hash;
        for _ in 0..5 {
            let _ = rt.deliver(broken, &Event::new("fail"));
        }
        let mut router = group.router();
        for _ in 0..2_000 {
            assert_eq!(
                router.route(&RequestContext::new()),
                Ok(healthy),
                "{strategy:?}"
            );
        }
        rt.shutdown();
    }
}

#[test]
fn drained_members_take_traffic_when_no_weighted_member_qualifies() {
    for (seed, strategy) in (50..).zip(Strategy::ALL) {
        let rt = runtime_with_a_drained_node();
        let group = ReplicaGroup::spawn(&rt, "echo", config(3, seed, strategy)).unwrap();
        rt.node_failed(1).unwrap();
        let drained = [
            member_on(&group, 2).unwrap().origin_hash,
            member_on(&group, 3).unwrap().origin_hash,
        ];
        let routed = group.route_event(&RequestContext::new()).unwrap();
        assert!(drained.contains(&routed), "{strategy:?}");
        let tagged = group
            .route_event(&RequestContext::new().require_tag("t"))
            .unwrap();
        assert_eq!(tagged, drained[0], "{strategy:?}");
        rt.shutdown();
    }
}
