//! Guarantee 11 of the crate docs, the circuit: deliver keeps error counts, 5
//! consecutive errors open a replica's circuit, every strategy skips open
//! circuits, and after the recovery window exactly one probe goes through.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use replica_router::*;
use replica_router_testkit::support::*;

/// A group config whose circuits, once open, stay open for `recovery`.
fn config_with_recovery(
    count: u8,
    seed_byte: u8,
    strategy: Strategy,
    recovery: Duration,
) -> ReplicaGroupConfig {
    let host = DaemonHostConfig {
        circuit_recovery: recovery,
        ..DaemonHostConfig::default()
    };
    config_with_host(count, seed_byte, strategy, host)
}

fn fail_n(rt: &DaemonRuntime, o: u64, n: usize) {
    for _ in 0..n {
        assert!(matches!(
            rt.deliver(o, &Event::new("fail")),
            Err(DeliverError::Daemon { .. })
        ));
    }
}

#[test]
fn default_host_config_is_5_failures_and_30_seconds() {
    let c = DaemonHostConfig::default();
    assert_eq!(c.circuit_failure_threshold, 5);
    assert_eq!(c.circuit_recovery, Duration::from_secs(30));
}

#[test]
fn five_consecutive_errors_open_the_circuit() {
    let rt = runtime(4, 1);
    let g = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_recovery(3, 1, Strategy::RoundRobin, Duration::from_secs(30)),
    )
    .unwrap();
    let o = g.replicas()[0].origin_hash;
    // Four errors and a success: the streak resets, the circuit stays closed.
    fail_n(&rt, o, 4);
    rt.deliver(o, &Event::new("ok")).unwrap();
    fail_n(&rt, o, 4);
    rt.deliver(o, &Event::new("ok")).unwrap();
    // Five in a row open it.
    fail_n(&rt, o, 5);
    assert_eq!(
        rt.deliver(o, &Event::new("ok")),
        Err(DeliverError::CircuitOpen(o))
    );
    rt.shutdown();
}

#[test]
fn every_strategy_skips_open_circuits() {
    let rt = runtime(4, 1);
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(
            &rt,
            "flaky",
            config_with_recovery(3, 10 + i as u8, strategy, Duration::from_secs(30)),
        )
        .unwrap();
        let mut router = g.router();
        let warm: BTreeSet<u64> = (0..300u32)
            .map(|k| {
                router
                    .route(&RequestContext::new().with_routing_key(k.to_le_bytes()))
                    .unwrap()
            })
            .collect();
        assert_eq!(warm.len(), 3);
        let open = g.replicas()[1].origin_hash;
        fail_n(&rt, open, 5);
        for k in 0..600u32 {
            let ctx = match k % 3 {
                0 => RequestContext::new(),
                1 => RequestContext::new().with_routing_key(k.to_le_bytes()),
                _ => RequestContext::new().with_session(u64::from(k)),
            };
            assert_ne!(router.route(&ctx).unwrap(), open, "{strategy:?} Router");
            assert_ne!(
                g.route_event(&ctx).unwrap(),
                open,
                "{strategy:?} route_event"
            );
        }
        // All circuits open: nothing admits the request.
        for m in g.replicas() {
            if m.origin_hash != open {
                fail_n(&rt, m.origin_hash, 5);
            }
        }
        assert_eq!(
            g.route_event(&RequestContext::new()),
            Err(GroupError::NoHealthyMember)
        );
        assert_eq!(
            router.route(&RequestContext::new().with_routing_key("k")),
            Err(GroupError::NoHealthyMember)
        );
    }
    rt.shutdown();
}

#[test]
fn threshold_is_configurable() {
    let rt = runtime(4, 1);
    let host = DaemonHostConfig {
        circuit_failure_threshold: 2,
        circuit_recovery: Duration::from_secs(30),
        ..DaemonHostConfig::default()
    };
    let cfg = config_with_host(2, 20, Strategy::RoundRobin, host);
    let g = ReplicaGroup::spawn(&rt, "flaky", cfg).unwrap();
    let o = g.replicas()[0].origin_hash;
    fail_n(&rt, o, 2);
    assert_eq!(
        rt.deliver(o, &Event::new("x")),
        Err(DeliverError::CircuitOpen(o))
    );
    rt.shutdown();
}

#[test]
fn after_the_window_exactly_one_probe_then_success_closes() {
    let rt = runtime(4, 1);
    let window = Duration::from_millis(400);
    let g = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_recovery(2, 30, Strategy::RoundRobin, window),
    )
    .unwrap();
    let o = g.replicas()[0].origin_hash;
    fail_n(&rt, o, 5);
    assert_eq!(
        rt.deliver(o, &Event::new("x")),
        Err(DeliverError::CircuitOpen(o))
    );
    std::thread::sleep(window + Duration::from_millis(100));
    // Routable again for its probe.
    let mut router = g.router();
    let seen: BTreeSet<u64> = (0..10)
        .map(|_| router.route(&RequestContext::new()).unwrap())
        .collect();
    assert!(seen.contains(&o), "the member is offered for its probe");
    // The probe is slow; a second delivery meanwhile is refused.
    let probing = Arc::new(AtomicBool::new(false));
    let (rt2, p2) = (rt.clone(), Arc::clone(&probing));
    let probe = std::thread::spawn(move || {
        p2.store(true, Ordering::SeqCst);
        rt2.deliver(o, &Event::new("slow"))
    });
    while !probing.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        rt.deliver(o, &Event::new("x")),
        Err(DeliverError::CircuitOpen(o)),
        "only one probe at a time"
    );
    assert_eq!(probe.join().unwrap(), Ok(vec![Bytes::from("slow")]));
    // The probe succeeded: the circuit is closed again.
    for _ in 0..3 {
        rt.deliver(o, &Event::new("x")).unwrap();
    }
    rt.shutdown();
}

#[test]
fn a_failed_probe_reopens_the_circuit() {
    let rt = runtime(4, 1);
    let window = Duration::from_millis(300);
    let g = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_recovery(2, 40, Strategy::RoundRobin, window),
    )
    .unwrap();
    let o = g.replicas()[0].origin_hash;
    fail_n(&rt, o, 5);
    std::thread::sleep(window + Duration::from_millis(100));
    fail_n(&rt, o, 1); // the probe fails
    assert_eq!(
        rt.deliver(o, &Event::new("x")),
        Err(DeliverError::CircuitOpen(o))
    );
    let mut router = g.router();
    for _ in 0..10 {
        assert_ne!(router.route(&RequestContext::new()).unwrap(), o);
    }
    rt.shutdown();
}

#[test]
fn panics_count_as_errors_for_the_circuit() {
    let rt = runtime(2, 1);
    let g = ReplicaGroup::spawn(&rt, "flaky", config(2, 50, Strategy::RoundRobin)).unwrap();
    let o = g.replicas()[0].origin_hash;
    for _ in 0..5 {
        assert!(matches!(
            rt.deliver(o, &Event::new("panic")),
            Err(DeliverError::Panicked { .. })
        ));
    }
    assert_eq!(
        rt.deliver(o, &Event::new("x")),
        Err(DeliverError::CircuitOpen(o))
    );
    rt.shutdown();
}
