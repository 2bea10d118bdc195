//! Bounded-load consistent hashing (issue 17): with
//! `DaemonHostConfig::hash_balance_factor`, a key whose member has more
//! deliveries in flight than the factor times the group's mean goes to the
//! next member of that key's own probe order. Hot keys spill, cold keys stay
//! put, and the spill is deterministic. Shown with deliveries held in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

/// A consistent-hash group of four `Flaky` replicas holding one latch.
fn group(factor: Option<f64>) -> (DaemonRuntime, ReplicaGroup, Arc<Latch>) {
    let latch = Arc::new(Latch::default());
    let rt = runtime(4, 1);
    let l = Arc::clone(&latch);
    rt.register_factory("held", move || {
        Box::new(Flaky::default().with_latch(Arc::clone(&l)))
    })
    .unwrap();
    let host = DaemonHostConfig {
        hash_balance_factor: factor,
        ..DaemonHostConfig::default()
    };
    let group = ReplicaGroup::spawn(
        &rt,
        "held",
        config_with_host(4, 23, Strategy::ConsistentHash, host),
    )
    .unwrap();
    (rt, group, latch)
}

/// The member each of 400 keys routes to, through a router and
/// `route_event` (which must agree).
fn owners(group: &ReplicaGroup) -> BTreeMap<u32, u64> {
    let mut router = group.router();
    (0..400u32)
        .map(|k| {
            let ctx = RequestContext::new().with_routing_key(k.to_le_bytes());
            let owner = router.route(&ctx).unwrap();
            assert_eq!(group.route_event(&ctx).unwrap(), owner, "key {k}");
            (k, owner)
        })
        .collect()
}

#[test]
fn hot_keys_spill_in_their_own_probe_order_and_cold_keys_stay_put() {
    let (rt, group, latch) = group(Some(1.25));
    let idle = owners(&group);
    let hot = group.replicas()[0].origin_hash;
    // Three deliveries in flight on one member, none on the others: the
    // mean is 3/4, the bound ⌈1.25 × (3 + 1) / 4⌉ = 2 in flight.
    let held = latch.hold(&rt, hot, 3);
    let busy = owners(&group);
    let mut spilled_to = BTreeSet::new();
    for (k, &owner) in &idle {
        if owner == hot {
            assert_ne!(busy[k], hot, "key {k} stayed on the overloaded member");
            spilled_to.insert(busy[k]);
        } else {
            assert_eq!(busy[k], owner, "cold key {k} moved");
        }
    }
    // Each key has its own probe order, so the spill spreads over the
    // other members instead of piling onto one neighbour…
    assert!(spilled_to.len() >= 2, "spilled only to {spilled_to:?}");
    // …and is the same every time.
    assert_eq!(owners(&group), busy);
    held.release();
    assert_eq!(owners(&group), idle, "keys return once the member is idle");
    rt.shutdown();
}

#[test]
fn without_a_balance_factor_keys_stay_with_a_busy_member() {
    let (rt, group, latch) = group(None);
    let idle = owners(&group);
    let hot = group.replicas()[0].origin_hash;
    assert!(idle.values().any(|&o| o == hot));
    let held = latch.hold(&rt, hot, 3);
    assert_eq!(owners(&group), idle);
    held.release();
    rt.shutdown();
}

#[test]
fn a_load_within_the_bound_moves_no_key() {
    // One delivery in flight: with a factor of 3 the bound is
    // ⌈3 × (1 + 1) / 4⌉ = 2, and the member is under it.
    let (rt, group, latch) = group(Some(3.0));
    let idle = owners(&group);
    let held = latch.hold(&rt, group.replicas()[1].origin_hash, 1);
    assert_eq!(owners(&group), idle);
    held.release();
    rt.shutdown();
}

#[test]
fn a_balance_factor_below_one_or_not_finite_is_invalid_config() {
    let rt = runtime(4, 1);
    for factor in [0.5, 0.999, f64::NAN, f64::INFINITY, -1.0] {
        let host = DaemonHostConfig {
            hash_balance_factor: Some(factor),
            ..DaemonHostConfig::default()
        };
        let err = ReplicaGroup::spawn(
            &rt,
            "echo",
            config_with_host(3, 24, Strategy::ConsistentHash, host),
        )
        .unwrap_err();
        assert!(
            matches!(&err, GroupError::InvalidConfig(m) if m.contains("hash_balance_factor")),
            "{factor}: {err:?}"
        );
    }
    rt.shutdown();
}
