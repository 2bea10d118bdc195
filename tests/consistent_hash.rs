//! Guarantee 13 of the crate docs: ConsistentHash is sticky, balanced and minimally
//! disruptive; it keys on the routing key, else the session, else rotates.

use std::collections::{BTreeMap, BTreeSet};

use replica_router::*;
use replica_router_testkit::support::*;

const KEYS: u32 = 20_000;
const MEMBERS: u8 = 10;
const SEED: u8 = 77;

fn key_ctx(k: u32) -> RequestContext {
    RequestContext::new().with_routing_key(format!("key-{k}"))
}

/// Owner of every key, through a fresh Router (it sees the current roster).
fn mapping(g: &ReplicaGroup) -> Vec<u64> {
    let mut router = g.router();
    (0..KEYS)
        .map(|k| router.route(&key_ctx(k)).unwrap())
        .collect()
}

fn group(nodes: u64) -> (DaemonRuntime, ReplicaGroup) {
    let rt = runtime(nodes, 2);
    let g =
        ReplicaGroup::spawn(&rt, "echo", config(MEMBERS, SEED, Strategy::ConsistentHash)).unwrap();
    (rt, g)
}

/// Recovers member `m`'s node: the group is whole again, and every key is
/// back with the owner it had in `base`.
fn recover_and_check_mapping(g: &ReplicaGroup, m: &MemberInfo, base: &[u64]) {
    g.on_node_recovery(m.node_id);
    assert_eq!(g.health(), GroupHealth::Healthy);
    assert_eq!(
        mapping(g),
        base,
        "restoring member {} restores the mapping",
        m.index
    );
}

fn moved(a: &[u64], b: &[u64]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[test]
fn consistent_hash_is_sticky() {
    let (rt, g) = group(MEMBERS as u64);
    let base = mapping(&g);
    assert_eq!(mapping(&g), base, "a second router agrees");
    let via_event: Vec<u64> = (0..KEYS)
        .map(|k| g.route_event(&key_ctx(k)).unwrap())
        .collect();
    assert_eq!(via_event, base, "route_event agrees with Router");
    let mut router = g.router();
    for _ in 0..3 {
        for k in (0..KEYS).step_by(97) {
            assert_eq!(router.route(&key_ctx(k)).unwrap(), base[k as usize]);
        }
    }
    // Another runtime (another "machine") with the same seed maps identically.
    let (rt2, g2) = group(MEMBERS as u64);
    assert_eq!(mapping(&g2), base);
    rt.shutdown();
    rt2.shutdown();
}

#[test]
fn consistent_hash_is_balanced_within_15_percent() {
    let (rt, g) = group(MEMBERS as u64);
    let base = mapping(&g);
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &base {
        *counts.entry(*o).or_default() += 1;
    }
    assert_eq!(counts.len(), MEMBERS as usize, "every member owns keys");
    let fair = f64::from(KEYS) / f64::from(MEMBERS);
    for (o, c) in &counts {
        let dev = (*c as f64 - fair).abs() / fair;
        assert!(
            dev <= 0.15,
            "member {o:#x} owns {c} keys ({:.1}% off)",
            dev * 100.0
        );
    }
    rt.shutdown();
}

#[test]
fn losing_one_member_moves_only_its_keys_and_restoring_restores_exactly() {
    // No spare node: the member stays registered, unhealthy, on its node.
    let (rt, g) = group(MEMBERS as u64);
    let base = mapping(&g);
    let members = g.replicas();
    for m in &members {
        assert_eq!(g.on_node_failure(m.node_id).unwrap(), Vec::<u8>::new());
        assert_eq!(g.healthy_count(), MEMBERS - 1);
        let now = mapping(&g);
        let mut extra = 0;
        for (before, after) in base.iter().zip(&now) {
            assert_ne!(
                *after, m.origin_hash,
                "a key still routes to the lost member"
            );
            if *before != m.origin_hash && before != after {
                extra += 1;
            }
        }
        let limit = KEYS as usize * 2 / 100;
        assert!(
            extra <= limit,
            "losing member {} moved {extra} keys it did not own (limit {limit})",
            m.index
        );
        recover_and_check_mapping(&g, m, &base);
    }
    rt.shutdown();
}

#[test]
fn losing_one_member_restores_the_exact_mapping() {
    // The half of the requirement above that holds today: the table is a
    // function of the healthy set, so restoring gives back the old mapping.
    let (rt, g) = group(MEMBERS as u64);
    let base = mapping(&g);
    for m in g.replicas() {
        g.on_node_failure(m.node_id).unwrap();
        let now = mapping(&g);
        assert!(now.iter().all(|o| *o != m.origin_hash));
        recover_and_check_mapping(&g, &m, &base);
    }
    rt.shutdown();
}

#[test]
fn failover_that_keeps_identity_moves_no_key() {
    // Spare nodes: each failed member is re-placed with its identity.
    let (rt, g) = group(MEMBERS as u64 + 1);
    let base = mapping(&g);
    for index in 0..MEMBERS {
        let node = g.replicas()[index as usize].node_id;
        assert_eq!(g.on_node_failure(node).unwrap(), vec![index]);
        assert_eq!(g.health(), GroupHealth::Healthy);
        assert_eq!(mapping(&g), base, "failover of member {index} moved keys");
        g.on_node_recovery(node);
        assert_eq!(mapping(&g), base);
    }
    // The same through the runtime.
    for index in [3usize, 7] {
        let node = g.replicas()[index].node_id;
        assert_eq!(rt.node_failed(node).unwrap(), 1);
        assert_eq!(mapping(&g), base);
        rt.node_recovered(node).unwrap();
    }
    rt.shutdown();
}

#[test]
fn growing_10_to_11_moves_at_most_a_fair_share_plus_4_percent() {
    let (rt, g) = group(MEMBERS as u64 + 1);
    let base = mapping(&g);
    g.scale_to(MEMBERS + 1).unwrap();
    let now = mapping(&g);
    let n = moved(&base, &now);
    let limit = (f64::from(KEYS) * (1.0 / 11.0 + 0.04)) as usize;
    assert!(n <= limit, "growing moved {n} keys (limit {limit})");
    // Guarantee 13 bounds the total; Maglev also moves a few keys between old
    // members (as it does on loss, where 2% is allowed): bound those too.
    let newcomer = origin(SEED, MEMBERS);
    let reshuffled = base
        .iter()
        .zip(&now)
        .filter(|(b, a)| b != a && **a != newcomer)
        .count();
    assert!(
        reshuffled * 50 <= KEYS as usize,
        "{reshuffled} keys moved between old members"
    );
    // Shrinking back restores the exact mapping.
    g.scale_to(MEMBERS).unwrap();
    assert_eq!(mapping(&g), base);
    rt.shutdown();
}

#[test]
fn session_is_the_key_when_there_is_no_routing_key() {
    let (rt, g) = group(MEMBERS as u64);
    let mut router = g.router();
    let sessions: Vec<u64> = (0..2_000u64).map(|s| s * 7 + 1).collect();
    let owners: Vec<u64> = sessions
        .iter()
        .map(|&s| {
            router
                .route(&RequestContext::new().with_session(s))
                .unwrap()
        })
        .collect();
    // Sticky, on both routing paths.
    for _ in 0..2 {
        for (s, o) in sessions.iter().zip(&owners) {
            let ctx = RequestContext::new().with_session(*s);
            assert_eq!(router.route(&ctx).unwrap(), *o);
            assert_eq!(g.route_event(&ctx).unwrap(), *o);
        }
    }
    // Spread over the members.
    let distinct: BTreeSet<u64> = owners.iter().copied().collect();
    assert_eq!(distinct.len(), MEMBERS as usize);
    // A routing key wins over the session.
    let base = mapping(&g);
    for k in 0..500u32 {
        let ctx = key_ctx(k).with_session(u64::from(k) * 13);
        assert_eq!(router.route(&ctx).unwrap(), base[k as usize]);
        let ctx = RequestContext::new()
            .with_session(u64::from(k) * 13)
            .with_routing_key(format!("key-{k}"));
        assert_eq!(g.route_event(&ctx).unwrap(), base[k as usize]);
    }
    rt.shutdown();
}

#[test]
fn no_key_and_no_session_falls_back_to_round_robin() {
    let (rt, g) = group(MEMBERS as u64);
    let all: BTreeSet<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    let mut router = g.router();
    let ctx = RequestContext::new();
    for _ in 0..5 {
        let a: BTreeSet<u64> = (0..MEMBERS).map(|_| router.route(&ctx).unwrap()).collect();
        assert_eq!(a, all, "Router: {MEMBERS} routes visit every member once");
        let b: BTreeSet<u64> = (0..MEMBERS).map(|_| g.route_event(&ctx).unwrap()).collect();
        assert_eq!(
            b, all,
            "route_event: {MEMBERS} routes visit every member once"
        );
    }
    rt.shutdown();
}
