//! Guarantees 10 and 11 of the crate docs: live stats (in flight, latency EWMA, errors,
//! `MeshDaemon::load`) and node weights drive the load-aware strategies;
//! in-flight counts are taken by `deliver` only and cannot leak; PowerOfTwo
//! draws two distinct members; least-* strategies break ties by rotation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use replica_router::*;
use replica_router_testkit::support::*;

struct Fixture {
    rt: DaemonRuntime,
    latch: Arc<Latch>,
}

/// A runtime over nodes 1..=n with the given weights (one zone) and a `busy`
/// kind: `flaky` daemons whose `hold` events wait on the fixture's latch,
/// the k-th created taking `delays[k]` per event and reporting `loads[k]`.
fn fixture(weights: &[u32], delays: Vec<Duration>, loads: Vec<f64>) -> Fixture {
    let rt = runtime_on(
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| NodeInfo::new(i as u64 + 1).with_weight(w)),
    );
    let latch = Arc::new(Latch::default());
    let made = Arc::new(AtomicUsize::new(0));
    let l = Arc::clone(&latch);
    rt.register_factory("busy", move || {
        let k = made.fetch_add(1, Ordering::SeqCst);
        let daemon = Flaky::default()
            .with_latch(Arc::clone(&l))
            .with_delay(delays.get(k).copied().unwrap_or_default())
            .with_load(loads.get(k).copied().unwrap_or_default());
        Box::new(daemon)
    })
    .unwrap();
    Fixture { rt, latch }
}

impl Fixture {
    /// Keeps `n` deliveries to `origin` in flight until released.
    fn hold(&self, origin: u64, n: usize) -> Held {
        self.latch.hold(&self.rt, origin, n)
    }
}

fn spawn(f: &Fixture, n: u8, seed_byte: u8, strategy: Strategy) -> ReplicaGroup {
    ReplicaGroup::spawn(&f.rt, "busy", config(n, seed_byte, strategy)).unwrap()
}

/// Each member's index, by origin hash.
fn index_of(g: &ReplicaGroup) -> BTreeMap<u64, u8> {
    g.replicas()
        .iter()
        .map(|m| (m.origin_hash, m.index))
        .collect()
}

/// Routes `ctx` `n` times through a fresh `Router`: routes per member index.
fn count_routes(g: &ReplicaGroup, n: usize, ctx: &RequestContext) -> BTreeMap<u8, usize> {
    let index_of = index_of(g);
    let mut router = g.router();
    tally((0..n).map(|_| index_of[&router.route(ctx).unwrap()]))
}

#[test]
fn least_strategies_break_ties_by_rotation() {
    let f = fixture(&[100, 100, 100, 100], vec![], vec![]);
    for (i, s) in [
        Strategy::LeastConnections,
        Strategy::WeightedLeastConnections,
        Strategy::LeastLatency,
        Strategy::LeastLoad,
    ]
    .into_iter()
    .enumerate()
    {
        let g = spawn(&f, 4, 1 + i as u8, s);
        let c = count_routes(&g, 4_000, &RequestContext::new());
        assert_eq!(c.len(), 4, "{s:?}: {c:?}");
        assert!(
            c.values().all(|&n| n == 1_000),
            "{s:?} ties rotate evenly: {c:?}"
        );
        let seq: Vec<u64> = (0..4)
            .map(|_| g.route_event(&RequestContext::new()).unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<u64> = seq.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "{s:?}: route_event rotates too");
    }
    f.rt.shutdown();
}

#[test]
fn least_connections_avoids_members_with_deliveries_in_flight() {
    let f = fixture(&[100, 100, 100], vec![], vec![]);
    for (i, s) in [
        Strategy::LeastConnections,
        Strategy::WeightedLeastConnections,
        Strategy::LeastLoad,
        Strategy::PowerOfTwo,
    ]
    .into_iter()
    .enumerate()
    {
        let g = spawn(&f, 3, 10 + i as u8, s);
        let busy = g.replicas()[1].origin_hash;
        let held = f.hold(busy, 2);
        let c = count_routes(&g, 600, &RequestContext::new());
        assert!(
            !c.contains_key(&1),
            "{s:?} routed to the busy member: {c:?}"
        );
        assert_eq!(c.len(), 2, "{s:?}: both idle members take traffic: {c:?}");
        held.release();
        // Released: in flight is back to 0 and every member takes traffic.
        let c = count_routes(&g, 600, &RequestContext::new());
        assert_eq!(c.len(), 3, "{s:?} after release: {c:?}");
    }
    f.rt.shutdown();
}

#[test]
fn power_of_two_draws_two_distinct_members() {
    // With two members, two distinct draws always include the idle one.
    let f = fixture(&[100, 100], vec![], vec![]);
    let g = spawn(&f, 2, 20, Strategy::PowerOfTwo);
    let busy = g.replicas()[0].origin_hash;
    let held = f.hold(busy, 1);
    let c = count_routes(&g, 5_000, &RequestContext::new());
    assert_eq!(c.get(&0), None, "a draw of the busy member twice: {c:?}");
    assert_eq!(c.get(&1), Some(&5_000));
    held.release();
    // Idle: ties go to the first drawn, itself random, so both take traffic.
    let c = count_routes(&g, 5_000, &RequestContext::new());
    assert!(c.values().all(|&n| n > 2_000), "{c:?}");
    f.rt.shutdown();
}

#[test]
fn in_flight_counts_cannot_leak_through_errors_or_panics() {
    let f = fixture(&[100, 100, 100], vec![], vec![]);
    let g = spawn(&f, 3, 30, Strategy::LeastConnections);
    let o = g.replicas()[0].origin_hash;
    // Fewer than 5 in a row, so the circuit stays closed.
    for payload in ["fail", "panic", "ok", "fail", "panic", "ok", "panic"] {
        let _ = f.rt.deliver(o, &Event::new(payload));
    }
    // 20,000 routes without delivery take nothing either.
    for _ in 0..20_000 {
        g.route_event(&RequestContext::new()).unwrap();
    }
    let c = count_routes(&g, 3_000, &RequestContext::new());
    assert!(
        c.values().all(|&n| n == 1_000),
        "every member idle again: {c:?}"
    );
    f.rt.shutdown();
}

#[test]
fn least_latency_prefers_the_fast_members() {
    // The first daemon created (replica 0) takes 20 ms per event.
    let delays = vec![Duration::from_millis(20)];
    let f = fixture(&[100, 100, 100], delays, vec![]);
    let g = spawn(&f, 3, 40, Strategy::LeastLatency);
    let slow = g.replicas()[0].origin_hash;
    let mut router = g.router();
    let mut slow_picks = 0;
    for _ in 0..60 {
        let o = router.route(&RequestContext::new()).unwrap();
        if o == slow {
            slow_picks += 1;
        }
        f.rt.deliver(o, &Event::new("x")).unwrap();
    }
    // Unmeasured members are tried first: the slow one once, then never.
    assert_eq!(slow_picks, 1, "the slow member kept getting traffic");
    f.rt.shutdown();
}

#[test]
fn least_load_follows_daemon_load_and_errors() {
    // Replicas report load 0.0, 6.0 and 20.0 after each event.
    let f = fixture(&[100, 100, 100], vec![], vec![0.0, 6.0, 20.0]);
    let g = spawn(&f, 3, 50, Strategy::LeastLoad);
    let ms = g.replicas();
    for m in &ms {
        f.rt.deliver(m.origin_hash, &Event::new("x")).unwrap();
    }
    let c = count_routes(&g, 300, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(0, 300)]), "lowest load wins");
    // Replica 0 fails half its events: 0 + 10 x 0.5 = 5 < 6, still the lowest.
    f.rt.deliver(ms[0].origin_hash, &Event::new("fail"))
        .unwrap_err();
    let c = count_routes(&g, 300, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(0, 300)]), "{c:?}");
    // Two of three failed: 0 + 10 x 2/3 = 6.7 > 6: replica 1 takes over.
    f.rt.deliver(ms[0].origin_hash, &Event::new("fail"))
        .unwrap_err();
    let c = count_routes(&g, 300, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(1, 300)]), "{c:?}");
    f.rt.shutdown();
}

#[test]
fn least_strategies_share_evenly_among_tied_members() {
    let f = fixture(&[100, 100, 100, 100], vec![], vec![]);
    for (i, s) in [
        Strategy::LeastConnections,
        Strategy::WeightedLeastConnections,
        Strategy::LeastLoad,
    ]
    .into_iter()
    .enumerate()
    {
        let g = spawn(&f, 4, 120 + i as u8, s);
        let held = f.hold(g.replicas()[1].origin_hash, 1);
        // Members 0, 2 and 3 are idle and tied: each should get a third.
        let c = count_routes(&g, 3_000, &RequestContext::new());
        held.release();
        for idle in [0u8, 2, 3] {
            let n = c.get(&idle).copied().unwrap_or(0);
            assert!(
                (900..=1_100).contains(&n),
                "{s:?}: tied member {idle} got {n} of 3,000: {c:?}"
            );
        }
    }
    f.rt.shutdown();
}

#[test]
fn default_daemon_load_is_zero() {
    assert_eq!(Echo.load(), 0.0);
}

#[test]
fn weighted_round_robin_follows_node_weights_exactly() {
    let f = fixture(&[100, 200, 300], vec![], vec![]);
    for (i, s) in [Strategy::WeightedRoundRobin, Strategy::Adaptive]
        .into_iter()
        .enumerate()
    {
        let g = spawn(&f, 3, 60 + i as u8, s);
        assert_eq!(member_nodes(&g), vec![1, 2, 3]);
        let c = count_routes(&g, 6_000, &RequestContext::new());
        assert_eq!(
            c,
            BTreeMap::from([(0, 1_000), (1, 2_000), (2, 3_000)]),
            "{s:?}"
        );
        // Smooth: every 6 consecutive routes hold exactly 1, 2 and 3.
        let mut router = g.router();
        let index_of = index_of(&g);
        for _ in 0..50 {
            let mut lap = [0; 3];
            for _ in 0..6 {
                lap[index_of[&router.route(&RequestContext::new()).unwrap()] as usize] += 1;
            }
            assert_eq!(lap, [1, 2, 3], "{s:?}");
        }
    }
    f.rt.shutdown();
}

#[test]
fn weighted_random_follows_node_weights() {
    let f = fixture(&[100, 200, 300], vec![], vec![]);
    let g = spawn(&f, 3, 70, Strategy::WeightedRandom);
    let c = count_routes(&g, 60_000, &RequestContext::new());
    for (i, expected) in [(0u8, 10_000.0), (1, 20_000.0), (2, 30_000.0)] {
        let got = c[&i] as f64;
        assert!(
            (got - expected).abs() / expected < 0.05,
            "member {i}: {got} of 60,000 (expected {expected}): {c:?}"
        );
    }
    f.rt.shutdown();
}

#[test]
fn weighted_least_connections_prefers_the_heavier_idle_node() {
    let f = fixture(&[100, 300], vec![], vec![]);
    let g = spawn(&f, 2, 80, Strategy::WeightedLeastConnections);
    let c = count_routes(&g, 100, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(1, 100)]), "(0+1)/300 < (0+1)/100");
    // Two in flight on the heavy one: (2+1)/300 = 0.01 = (0+1)/100: a tie, shared.
    let heavy = g.replicas()[1].origin_hash;
    let held = f.hold(heavy, 2);
    let c = count_routes(&g, 100, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(0, 50), (1, 50)]), "{c:?}");
    held.release();
    f.rt.shutdown();
}

#[test]
fn all_zero_weights_count_as_equal() {
    let f = fixture(&[0, 0, 0], vec![], vec![]);
    for (i, s) in [Strategy::WeightedRoundRobin, Strategy::WeightedRandom]
        .into_iter()
        .enumerate()
    {
        let g = spawn(&f, 3, 90 + i as u8, s);
        let c = count_routes(&g, 3_000, &RequestContext::new());
        assert_eq!(c.len(), 3, "{s:?}: {c:?}");
        for n in c.values() {
            assert!((800..=1_200).contains(n), "{s:?}: {c:?}");
        }
    }
    f.rt.shutdown();
}

#[test]
fn adaptive_uses_consistent_hashing_for_keys_and_sessions() {
    let a = fixture(&[100, 100, 100, 100, 100], vec![], vec![]);
    let b = fixture(&[100, 100, 100, 100, 100], vec![], vec![]);
    let adaptive = spawn(&a, 5, 100, Strategy::Adaptive);
    let consistent = spawn(&b, 5, 100, Strategy::ConsistentHash);
    let (mut ra, mut rb) = (adaptive.router(), consistent.router());
    for k in 0..2_000u32 {
        let keyed = RequestContext::new().with_routing_key(k.to_le_bytes());
        assert_eq!(ra.route(&keyed).unwrap(), rb.route(&keyed).unwrap());
        let session = RequestContext::new().with_session(u64::from(k));
        assert_eq!(ra.route(&session).unwrap(), rb.route(&session).unwrap());
    }
    a.rt.shutdown();
    b.rt.shutdown();
}

#[test]
fn adaptive_sends_uneven_load_to_the_less_busy_member() {
    let f = fixture(&[100, 100], vec![], vec![]);
    let g = spawn(&f, 2, 110, Strategy::Adaptive);
    let busy = g.replicas()[0].origin_hash;
    let held = f.hold(busy, 1);
    let c = count_routes(&g, 1_000, &RequestContext::new());
    assert_eq!(c, BTreeMap::from([(1, 1_000)]), "{c:?}");
    held.release();
    f.rt.shutdown();
}
