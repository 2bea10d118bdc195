//! Load-aware strategies steer away from a replica with a delivery in flight
//! while others are idle, and come back to it once it is idle.

use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

/// A group of `count` `flaky` replicas whose `hold` events wait on the
/// returned latch.
fn group_with_latch(strategy: Strategy, count: u8) -> (DaemonRuntime, ReplicaGroup, Arc<Latch>) {
    let latch = Arc::new(Latch::default());
    let rt = runtime(count.into(), 1);
    let l = Arc::clone(&latch);
    rt.register_factory("held", move || {
        Box::new(Flaky::default().with_latch(Arc::clone(&l)))
    })
    .unwrap();
    let group = ReplicaGroup::spawn(&rt, "held", config(count, 70, strategy)).unwrap();
    (rt, group, latch)
}

fn busy_replica_is_avoided_then_used_again(strategy: Strategy) {
    let (rt, group, latch) = group_with_latch(strategy, 4);
    let busy = group.replicas()[2].origin_hash;
    let held = latch.hold(&rt, busy, 1);
    let mut router = group.router();
    for _ in 0..2_000 {
        let picked = router.route(&RequestContext::new()).unwrap();
        assert_ne!(
            picked, busy,
            "{strategy:?} picked the busy replica while others were idle"
        );
        let picked = group.route_event(&RequestContext::new()).unwrap();
        assert_ne!(
            picked, busy,
            "{strategy:?} route_event picked the busy replica"
        );
    }
    held.release();
    let back = (0..200).any(|_| router.route(&RequestContext::new()).unwrap() == busy);
    assert!(
        back,
        "{strategy:?} never returned to the replica once it was idle"
    );
}

#[test]
fn least_connections_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::LeastConnections);
}

#[test]
fn weighted_least_connections_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::WeightedLeastConnections);
}

#[test]
fn power_of_two_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::PowerOfTwo);
}

#[test]
fn least_load_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::LeastLoad);
}

#[test]
fn adaptive_steers_most_traffic_away_from_a_busy_replica() {
    let (rt, group, latch) = group_with_latch(Strategy::Adaptive, 4);
    let busy = group.replicas()[1].origin_hash;
    let held = latch.hold(&rt, busy, 1);
    let mut router = group.router();
    let picked_busy = (0..4_000)
        .filter(|_| router.route(&RequestContext::new()).unwrap() == busy)
        .count();
    held.release();
    // The busy member can only come from the schedule, and then the second
    // member drawn (always another, idle one) has fewer in flight and wins.
    assert_eq!(
        picked_busy, 0,
        "busy replica got {picked_busy} of 4000 routes"
    );
}

#[test]
fn least_latency_tries_every_unmeasured_member_before_repeating_one() {
    let (rt, group, _latch) = group_with_latch(Strategy::LeastLatency, 4);
    let mut router = group.router();
    let mut first: Vec<u64> = (0..4)
        .map(|_| {
            let o = router.route(&RequestContext::new()).unwrap();
            rt.deliver(o, &Event::new("x")).unwrap();
            o
        })
        .collect();
    first.sort_unstable();
    first.dedup();
    assert_eq!(first.len(), 4, "every unmeasured member is tried first");
}
