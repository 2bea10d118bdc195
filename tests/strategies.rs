//! Strategies (guarantee 12 of the crate docs, and the route-path parts of 10 and 11): rotation,
//! random, a million routes on every strategy, zone preference and tag
//! requirements on every strategy.

use std::collections::BTreeSet;
use std::time::Instant;

use replica_router::*;
use replica_router_testkit::support::*;

/// Strategies whose plain (no key) routes are not a pure function of the
/// request: they may pick any admissible member.
fn keyed_is_sticky(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::ConsistentHash | Strategy::Adaptive)
}

#[test]
fn round_robin_cycles_through_all_healthy_members_evenly() {
    let rt = runtime(5, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(5, 1, Strategy::RoundRobin)).unwrap();
    let all: BTreeSet<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    let ctx = RequestContext::new();
    let mut router = g.router();
    let seq: Vec<u64> = (0..5_000).map(|_| router.route(&ctx).unwrap()).collect();
    for w in seq.chunks(5) {
        assert_eq!(
            w.iter().copied().collect::<BTreeSet<_>>(),
            all,
            "each lap visits every member"
        );
    }
    assert!(tally(seq).values().all(|&c| c == 1_000));
    let seq: Vec<u64> = (0..5_000).map(|_| g.route_event(&ctx).unwrap()).collect();
    assert!(
        tally(seq).values().all(|&c| c == 1_000),
        "route_event rotates evenly too"
    );
    // With one member down, the rotation covers the other four evenly.
    let down = g.replicas()[2].clone();
    rt.node_failed(down.node_id).unwrap();
    let seq: Vec<u64> = (0..4_000).map(|_| router.route(&ctx).unwrap()).collect();
    let c = tally(seq);
    assert_eq!(c.len(), 4);
    assert!(!c.contains_key(&down.origin_hash));
    assert!(c.values().all(|&n| n == 1_000), "{c:?}");
    rt.shutdown();
}

#[test]
fn random_covers_all_members() {
    let rt = runtime(5, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(5, 2, Strategy::Random)).unwrap();
    let ctx = RequestContext::new();
    let mut router = g.router();
    let a = tally((0..10_000).map(|_| router.route(&ctx).unwrap()));
    let b = tally((0..10_000).map(|_| g.route_event(&ctx).unwrap()));
    for c in [a, b] {
        assert_eq!(c.len(), 5);
        for n in c.values() {
            assert!((1_500..=2_500).contains(n), "roughly uniform: {c:?}");
        }
    }
    rt.shutdown();
}

#[test]
fn a_million_routes_on_every_strategy_never_fail() {
    let rt = runtime(8, 2);
    let keyed: Vec<RequestContext> = (0..1024u32)
        .map(|k| RequestContext::new().with_routing_key(k.to_le_bytes()))
        .collect();
    let plain = RequestContext::new();
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(8, 100 + i as u8, strategy)).unwrap();
        let members: BTreeSet<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
        let mut router = g.router();
        let started = Instant::now();
        let mut seen = BTreeSet::new();
        let mut acc = 0u64;
        for n in 0..1_000_000usize {
            let ctx = if n % 2 == 0 { &plain } else { &keyed[n % 1024] };
            let o = router.route(ctx).expect("a route failed");
            acc = acc.wrapping_add(o);
            if n % 1000 < 16 {
                seen.insert(o);
            }
        }
        let elapsed = started.elapsed();
        assert_eq!(seen, members, "{strategy:?} reaches every member");
        eprintln!("{strategy:?}: 1,000,000 Router routes in {elapsed:?} (acc {acc:x})");
        // And as many through route_event.
        let started = Instant::now();
        for n in 0..1_000_000usize {
            let ctx = if n % 2 == 0 { &plain } else { &keyed[n % 1024] };
            g.route_event(ctx).expect("a route_event failed");
        }
        eprintln!(
            "{strategy:?}: 1,000,000 route_event calls in {:?}",
            started.elapsed()
        );
        let o = router.route(&plain).unwrap();
        rt.deliver(o, &Event::new("still fine")).unwrap();
    }
    rt.shutdown();
}

#[test]
fn every_strategy_spawns_and_routes() {
    // An unavailable strategy would be InvalidConfig naming it; this
    // build implements all eleven, so each one spawns and routes.
    let rt = runtime(3, 1);
    assert_eq!(Strategy::ALL.len(), 11);
    for (i, s) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(3, 200 + i as u8, s))
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(g.strategy(), s);
        let o = g.route_event(&RequestContext::new()).unwrap();
        rt.deliver(o, &Event::new("x")).unwrap();
        let o = g
            .router()
            .route(&RequestContext::new().with_routing_key("k"))
            .unwrap();
        rt.deliver(o, &Event::new("x")).unwrap();
    }
    assert_eq!(Strategy::default(), Strategy::RoundRobin);
    rt.shutdown();
}

/// Six nodes in zones z0, z1, z2 (two each); tags: ssd on 1 and 2, gpu on 2 and 3.
fn tagged_runtime() -> DaemonRuntime {
    runtime_on((1..=6).map(|id| {
        let mut n = NodeInfo::new(id).with_zone(&zone_of(id, 3));
        if id == 1 || id == 2 {
            n = n.with_tag("ssd");
        }
        if id == 2 || id == 3 {
            n = n.with_tag("gpu");
        }
        n
    }))
}

fn hashes_on(g: &ReplicaGroup, nodes: &[u64]) -> BTreeSet<u64> {
    g.replicas()
        .iter()
        .filter(|m| nodes.contains(&m.node_id))
        .map(|m| m.origin_hash)
        .collect()
}

/// Routes `ctx` 300 times (varying the key when `keyed`) on both paths.
fn picks(g: &ReplicaGroup, ctx: &RequestContext, keyed: bool) -> Result<BTreeSet<u64>, GroupError> {
    let mut router = g.router();
    let mut out = BTreeSet::new();
    for k in 0..300u32 {
        let c = if keyed {
            ctx.clone().with_routing_key(k.to_le_bytes())
        } else {
            ctx.clone()
        };
        out.insert(router.route(&c)?);
        out.insert(g.route_event(&c)?);
    }
    Ok(out)
}

#[test]
fn zone_preference_prefers_in_zone_members_and_falls_back() {
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let rt = tagged_runtime();
        let g = ReplicaGroup::spawn(&rt, "echo", config(6, 50 + i as u8, strategy)).unwrap();
        let everyone = hashes_on(&g, &[1, 2, 3, 4, 5, 6]);
        // z1 holds nodes 2 and 5.
        let z1 = hashes_on(&g, &[2, 5]);
        let ctx = RequestContext::new().with_zone("z1");
        for keyed in [false, true] {
            assert_eq!(
                picks(&g, &ctx, keyed).unwrap(),
                z1,
                "{strategy:?} keyed={keyed}"
            );
        }
        // An unknown zone falls back to everyone.
        let nowhere = RequestContext::new().with_zone("nowhere");
        assert_eq!(
            picks(&g, &nowhere, false).unwrap(),
            everyone,
            "{strategy:?}"
        );
        assert!(picks(&g, &nowhere, true).unwrap().is_subset(&everyone));
        // One in-zone member down: the other takes the zone's traffic.
        rt.node_failed(2).unwrap();
        for keyed in [false, true] {
            assert_eq!(
                picks(&g, &ctx, keyed).unwrap(),
                hashes_on(&g, &[5]),
                "{strategy:?}"
            );
        }
        // Zone empty: fall back to the healthy members elsewhere.
        rt.node_failed(5).unwrap();
        let rest = hashes_on(&g, &[1, 3, 4, 6]);
        for keyed in [false, true] {
            let got = picks(&g, &ctx, keyed).unwrap();
            assert!(got.is_subset(&rest), "{strategy:?} keyed={keyed}");
            if !keyed || !keyed_is_sticky(strategy) {
                assert_eq!(got, rest, "{strategy:?} spreads over the fallback");
            }
        }
        rt.shutdown();
    }
}

#[test]
fn require_tag_admits_only_members_on_tagged_nodes() {
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let rt = tagged_runtime();
        let g = ReplicaGroup::spawn(&rt, "echo", config(6, 60 + i as u8, strategy)).unwrap();
        let ssd = RequestContext::new().require_tag("ssd");
        let both = RequestContext::new().require_tag("ssd").require_tag("gpu");
        for keyed in [false, true] {
            let got = picks(&g, &ssd, keyed).unwrap();
            assert!(got.is_subset(&hashes_on(&g, &[1, 2])), "{strategy:?}");
            if !keyed || !keyed_is_sticky(strategy) {
                assert_eq!(got, hashes_on(&g, &[1, 2]), "{strategy:?}");
            }
            assert_eq!(
                picks(&g, &both, keyed).unwrap(),
                hashes_on(&g, &[2]),
                "{strategy:?}"
            );
        }
        // Zone and tag: z0 is nodes 1 and 4; only node 1 has ssd.
        let zoned = RequestContext::new().with_zone("z0").require_tag("ssd");
        assert_eq!(picks(&g, &zoned, false).unwrap(), hashes_on(&g, &[1]));
        // z2 (nodes 3, 6) has no ssd: fall back to any ssd member.
        let zoned = RequestContext::new().with_zone("z2").require_tag("ssd");
        assert!(picks(&g, &zoned, true)
            .unwrap()
            .is_subset(&hashes_on(&g, &[1, 2])));
        // No member carries the tag.
        let none = RequestContext::new().require_tag("tpu");
        assert_eq!(g.route_event(&none), Err(GroupError::NoHealthyMember));
        assert_eq!(g.router().route(&none), Err(GroupError::NoHealthyMember));
        let keyed_none = none.clone().with_routing_key("k");
        assert_eq!(g.route_event(&keyed_none), Err(GroupError::NoHealthyMember));
        // The tagged members fail: nothing admits the request any more.
        rt.node_failed(2).unwrap();
        assert_eq!(g.route_event(&both), Err(GroupError::NoHealthyMember));
        assert_eq!(picks(&g, &ssd, false).unwrap(), hashes_on(&g, &[1]));
        rt.node_failed(1).unwrap();
        assert_eq!(g.route_event(&ssd), Err(GroupError::NoHealthyMember));
        assert_eq!(
            g.router().route(&ssd.clone().with_session(3)),
            Err(GroupError::NoHealthyMember)
        );
        // Untagged requests still route.
        assert!(g.route_event(&RequestContext::new()).is_ok());
        rt.shutdown();
    }
}

#[test]
fn require_tag_works_past_64_distinct_tags() {
    // Three nodes with 40 tags each: 120 distinct tags, more than a roster
    // numbers (64), so some requirements are checked on the member itself.
    let rt = runtime_on(
        (1..=3u64)
            .map(|id| (0..40).fold(NodeInfo::new(id), |n, t| n.with_tag(&format!("n{id}-t{t}")))),
    );
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(3, 150 + i as u8, strategy)).unwrap();
        let mut router = g.router();
        for m in g.replicas() {
            for t in 0..40 {
                let tag = format!("n{}-t{t}", m.node_id);
                let ctx = RequestContext::new().require_tag(&tag);
                assert_eq!(router.route(&ctx), Ok(m.origin_hash), "{strategy:?} {tag}");
                let keyed = ctx.clone().with_routing_key(tag.as_bytes());
                assert_eq!(
                    g.route_event(&keyed),
                    Ok(m.origin_hash),
                    "{strategy:?} {tag}"
                );
                // Two tags of different nodes: nobody carries both.
                let other = format!("n{}-t{t}", m.node_id % 3 + 1);
                let both = ctx.clone().require_tag(&other);
                assert_eq!(
                    router.route(&both),
                    Err(GroupError::NoHealthyMember),
                    "{strategy:?}"
                );
            }
        }
    }
    rt.shutdown();
}
