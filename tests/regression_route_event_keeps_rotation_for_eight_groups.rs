//! Regression (issue 18, adversarial testing): `route_event`'s per-thread
//! cache was direct-mapped by group id modulo 8, so groups 0 and 8 evicted
//! each other on every call: each route started its rotation at a random
//! place and paid a full snapshot load, and after 300 routes each the
//! round-robin counts were 13 off. The cache is now fully associative over 8
//! groups (least recently used evicted), so a thread keeps exact per-group
//! rotation for up to 8 groups, whatever their ids.

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn round_robin_is_exact_for_eight_groups_interleaved_on_one_thread() {
    let rt = runtime(3, 1);
    // Sixteen groups spawned, so that uids (and ids) collide modulo 8; the
    // thread routes on eight of them, interleaved.
    let groups: Vec<ReplicaGroup> = (0..16u8)
        .map(|s| {
            ReplicaGroup::spawn(&rt, "echo", config(3, 100 + s, Strategy::RoundRobin)).unwrap()
        })
        .collect();
    let routed: Vec<&ReplicaGroup> = groups.iter().step_by(2).collect();
    assert_eq!(routed.len(), 8);
    let mut counts = vec![std::collections::BTreeMap::new(); routed.len()];
    for _ in 0..300 {
        for (g, group) in routed.iter().enumerate() {
            let origin = group.route_event(&RequestContext::new()).unwrap();
            *counts[g].entry(origin).or_insert(0) += 1;
        }
    }
    for (g, c) in counts.iter().enumerate() {
        assert_eq!(c.len(), 3, "group {g}: {c:?}");
        assert!(c.values().all(|&n| n == 100), "group {g}: {c:?}");
    }
    rt.shutdown();
}

#[test]
fn a_ninth_group_evicts_only_the_least_recently_used() {
    let rt = runtime(3, 1);
    let groups: Vec<ReplicaGroup> = (0..9u8)
        .map(|s| {
            ReplicaGroup::spawn(&rt, "echo", config(3, 120 + s, Strategy::RoundRobin)).unwrap()
        })
        .collect();
    let ctx = RequestContext::new();
    // Group 0 routes once (then is the least recently used); groups 1..8
    // route alternately with a ninth, which evicts group 0, never them.
    let _ = groups[0].route_event(&ctx);
    let mut counts = vec![std::collections::BTreeMap::new(); 9];
    for _ in 0..30 {
        for (g, group) in groups.iter().enumerate().skip(1) {
            let origin = group.route_event(&ctx).unwrap();
            *counts[g].entry(origin).or_insert(0) += 1;
        }
    }
    for (g, c) in counts.iter().enumerate().skip(1) {
        assert!(c.values().all(|&n| n == 10), "group {g}: {c:?}");
    }
    rt.shutdown();
}
