//! Weighted strategies follow node weights (`NodeInfo::with_weight`).

use std::collections::HashMap;

use replica_router::*;
use replica_router_testkit::support::*;

const WEIGHTS: [u32; 4] = [100, 200, 300, 400];

/// A group of 4 replicas on nodes weighted 100 / 200 / 300 / 400, and each
/// member's weight by origin hash.
fn weighted_group(strategy: Strategy) -> (DaemonRuntime, ReplicaGroup, HashMap<u64, u32>) {
    let nodes = WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &w)| NodeInfo::new(i as u64 + 1).with_weight(w));
    let rt = runtime_on(nodes);
    let group = ReplicaGroup::spawn(&rt, "echo", config(4, 60, strategy)).unwrap();
    let weight_of = group
        .replicas()
        .iter()
        .map(|m| (m.origin_hash, WEIGHTS[(m.node_id - 1) as usize]))
        .collect();
    (rt, group, weight_of)
}

fn assert_shares_follow_weights(strategy: Strategy) {
    let (_rt, group, weight_of) = weighted_group(strategy);
    let mut router = group.router();
    let routes = 60_000u32;
    let counts = tally((0..routes).map(|_| router.route(&RequestContext::new()).unwrap()));
    let total_weight: u32 = WEIGHTS.iter().sum();
    for (origin, weight) in &weight_of {
        let expected = f64::from(routes) * f64::from(*weight) / f64::from(total_weight);
        let got = counts.get(origin).copied().unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= 0.05 * expected,
            "{strategy:?}: member with weight {weight} got {got} routes, expected {expected} ± 5%"
        );
    }
}

#[test]
fn weighted_round_robin_shares_follow_node_weights_within_5_percent() {
    assert_shares_follow_weights(Strategy::WeightedRoundRobin);
}

#[test]
fn weighted_random_shares_follow_node_weights_within_5_percent() {
    assert_shares_follow_weights(Strategy::WeightedRandom);
}

#[test]
fn weighted_round_robin_is_exact_over_a_cycle_and_interleaves() {
    let (_rt, group, weight_of) = weighted_group(Strategy::WeightedRoundRobin);
    let mut router = group.router();
    // weights 1:2:3:4 after dividing by their gcd: a cycle is 10 routes.
    let cycle: Vec<u64> = (0..10)
        .map(|_| router.route(&RequestContext::new()).unwrap())
        .collect();
    for (origin, weight) in &weight_of {
        let n = cycle.iter().filter(|o| *o == origin).count() as u32;
        assert_eq!(n, weight / 100, "one cycle gives each member its weight");
    }
    // Smooth: the routes are interleaved. Plain weighted round robin would
    // send the heaviest member 4 routes in a row; the smooth schedule never
    // gives any member more than 2 in a row, even across the cycle boundary
    // (the router starts at a random point of the cycle).
    let longest_run = (0..cycle.len())
        .map(|start| {
            cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .take_while(|o| **o == cycle[start])
                .count()
        })
        .max()
        .unwrap();
    assert!(longest_run <= 2, "bunched schedule: {cycle:x?}");
}

#[test]
fn zero_weight_members_get_no_weighted_round_robin_traffic() {
    let nodes = [
        NodeInfo::new(1).with_weight(0),
        NodeInfo::new(2).with_weight(100),
        NodeInfo::new(3).with_weight(100),
    ];
    let rt = runtime_on(nodes);
    let group =
        ReplicaGroup::spawn(&rt, "echo", config(3, 61, Strategy::WeightedRoundRobin)).unwrap();
    let zero = member_on(&group, 1).unwrap().origin_hash;
    let mut router = group.router();
    for _ in 0..1_000 {
        assert_ne!(router.route(&RequestContext::new()).unwrap(), zero);
    }
}

#[test]
fn weighted_round_robin_skips_members_of_a_failed_node() {
    let (rt, group, weight_of) = weighted_group(Strategy::WeightedRoundRobin);
    let heaviest = group
        .replicas()
        .into_iter()
        .find(|m| weight_of[&m.origin_hash] == 400)
        .unwrap();
    // No spare node: the member stays unhealthy.
    assert_eq!(rt.node_failed(heaviest.node_id).unwrap(), 0);
    let mut router = group.router();
    for _ in 0..1_000 {
        assert_ne!(
            router.route(&RequestContext::new()).unwrap(),
            heaviest.origin_hash
        );
    }
}
