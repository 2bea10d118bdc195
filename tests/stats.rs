//! What operators see (issue 16): `ReplicaGroup::stats` reports every
//! replica's live statistics (in flight, processed, errors, latency
//! estimate, circuit) from live deliveries.

use std::sync::Arc;
use std::time::Duration;

use replica_router::*;
use replica_router_testkit::support::*;

fn stats_of(group: &ReplicaGroup, origin: u64) -> MemberStats {
    group
        .stats()
        .into_iter()
        .find(|s| s.origin_hash == origin)
        .expect("a member")
}

#[test]
fn stats_follow_deliveries_in_flight_outcomes_latency_and_circuit() {
    let latch = Arc::new(Latch::default());
    let rt = runtime(3, 1);
    let l = Arc::clone(&latch);
    rt.register_factory("held", move || {
        Box::new(Flaky::default().with_latch(Arc::clone(&l)))
    })
    .unwrap();
    let host = DaemonHostConfig {
        circuit_failure_threshold: 2,
        circuit_recovery: Duration::from_millis(100),
        ..DaemonHostConfig::default()
    };
    let group = ReplicaGroup::spawn(
        &rt,
        "held",
        config_with_host(2, 7, Strategy::RoundRobin, host),
    )
    .unwrap();
    let members = group.replicas();
    let stats = group.stats();
    assert_eq!(stats.len(), 2);
    for (s, m) in stats.iter().zip(&members) {
        assert_eq!(
            (s.index, s.origin_hash, s.node_id, s.healthy),
            (m.index, m.origin_hash, m.node_id, true)
        );
        assert_eq!((s.in_flight, s.processed, s.errors), (0, 0, 0));
        assert_eq!(s.latency, None, "not measured yet");
        assert_eq!(s.circuit, CircuitState::Closed);
    }
    let origin = members[0].origin_hash;
    // Two deliveries held inside the daemon: in flight.
    let held = latch.hold(&rt, origin, 2);
    assert_eq!(stats_of(&group, origin).in_flight, 2);
    held.release();
    let after = stats_of(&group, origin);
    assert_eq!((after.in_flight, after.processed, after.errors), (0, 2, 0));
    assert!(after.latency.is_some_and(|l| l > Duration::ZERO));
    // Two failures open the circuit (threshold 2); the window passes.
    for _ in 0..2 {
        let _ = rt.deliver(origin, &Event::new("fail"));
    }
    let open = stats_of(&group, origin);
    assert_eq!((open.processed, open.errors), (4, 2));
    assert_eq!(open.circuit, CircuitState::Open);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(stats_of(&group, origin).circuit, CircuitState::HalfOpen);
    rt.deliver(origin, &Event::new("ok")).unwrap();
    assert_eq!(stats_of(&group, origin).circuit, CircuitState::Closed);
    // The other replica saw nothing; a failed node shows as unhealthy.
    let other = stats_of(&group, members[1].origin_hash);
    assert_eq!((other.processed, other.healthy), (0, true));
    rt.node_failed(members[1].node_id).unwrap();
    let moved = stats_of(&group, members[1].origin_hash);
    assert!(moved.healthy, "re-placed on the free node");
    assert_ne!(moved.node_id, members[1].node_id);
    rt.shutdown();
}
