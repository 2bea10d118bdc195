//! The circuit breaker's half-open state (DESIGN 11): once the recovery
//! window has passed, exactly one of the deliveries racing for the replica is
//! admitted as the probe; the others are turned away while it runs.
#![cfg(replica_router_loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use loom_tests::support::model;
use replica_router::loom_hooks::advance_clock;
use replica_router::*;
use replica_router_testkit::support::{config_with_host, runtime};

const WINDOW: Duration = Duration::from_secs(10);

fn host() -> DaemonHostConfig {
    DaemonHostConfig {
        circuit_failure_threshold: 1,
        circuit_recovery: WINDOW,
        ..DaemonHostConfig::default()
    }
}

/// A replica whose circuit is open: one failure at threshold 1.
fn opened() -> (Arc<DaemonRuntime>, ReplicaGroup, u64) {
    let rt = runtime(1, 1);
    let group = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_host(1, 3, Strategy::RoundRobin, host()),
    )
    .unwrap();
    let origin = group.route_event(&RequestContext::new()).unwrap();
    assert!(matches!(
        rt.deliver(origin, &Event::new("fail")),
        Err(DeliverError::Daemon { .. })
    ));
    assert_eq!(
        rt.deliver(origin, &Event::new("ok")),
        Err(DeliverError::CircuitOpen(origin)),
        "the circuit is open until the window passes"
    );
    (Arc::new(rt), group, origin)
}

/// Three deliveries race after the window (two threads and the main
/// thread); the probe fails, so the circuit opens again and no delivery can
/// slip in after it: exactly one reaches the daemon.
#[test]
fn half_open_circuit_admits_exactly_one_probe() {
    model("half_open_one_probe", || {
        let (rt, group, origin) = opened();
        advance_clock(WINDOW);
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let rt = Arc::clone(&rt);
                thread::spawn(move || rt.deliver(origin, &Event::new("fail")))
            })
            .collect();
        let mut results = vec![rt.deliver(origin, &Event::new("fail"))];
        results.extend(racers.into_iter().map(|r| r.join().unwrap()));
        let probes = results
            .iter()
            .filter(|r| matches!(r, Err(DeliverError::Daemon { .. })))
            .count();
        let rejected = results
            .iter()
            .filter(|r| **r == Err(DeliverError::CircuitOpen(origin)))
            .count();
        assert_eq!((probes, rejected), (1, 2), "{results:?}");
        assert_eq!(
            group.route_event(&RequestContext::new()),
            Err(GroupError::NoHealthyMember),
            "the failed probe reopened the circuit"
        );
        rt.shutdown();
    });
}

/// Two deliveries race after the window and the probe succeeds: one of them
/// is the probe, and the other is turned away while the probe runs or, once
/// the probe closed the circuit, delivered normally; routing sees the
/// circuit closed afterwards.
#[test]
fn successful_probe_closes_the_circuit_for_everyone() {
    model("successful_probe", || {
        let (rt, group, origin) = opened();
        advance_clock(WINDOW);
        let racer = {
            let rt = Arc::clone(&rt);
            thread::spawn(move || rt.deliver(origin, &Event::new("ok")))
        };
        let mine = rt.deliver(origin, &Event::new("ok"));
        let theirs = racer.join().unwrap();
        let delivered = [&mine, &theirs].iter().filter(|r| r.is_ok()).count();
        assert!(delivered >= 1, "{mine:?} {theirs:?}");
        for result in [&mine, &theirs] {
            assert!(
                result.is_ok() || *result == Err(DeliverError::CircuitOpen(origin)),
                "{result:?}"
            );
        }
        assert_eq!(group.route_event(&RequestContext::new()), Ok(origin));
        rt.shutdown();
    });
}
