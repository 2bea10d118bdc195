//! In-flight accounting under concurrent deliveries (DESIGN 10): `deliver`
//! counts a delivery in flight for exactly as long as it runs, a panicking
//! daemon included, so the count never underflows and returns to zero.
#![cfg(replica_router_loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::support::model;
use replica_router::loom_hooks::in_flight;
use replica_router::*;
use replica_router_testkit::support::{config, runtime};

/// Two threads deliver to one replica at once, one event that succeeds and
/// one that panics in the daemon, while the main thread watches the count.
#[test]
fn in_flight_never_underflows_and_returns_to_zero() {
    model("in_flight", || {
        let rt = runtime(1, 1);
        let group = ReplicaGroup::spawn(&rt, "flaky", config(1, 1, Strategy::RoundRobin)).unwrap();
        let origin = group.route_event(&RequestContext::new()).unwrap();
        let rt = Arc::new(rt);
        let deliveries: Vec<_> = ["ok", "panic"]
            .into_iter()
            .map(|payload| {
                let rt = Arc::clone(&rt);
                thread::spawn(move || rt.deliver(origin, &Event::new(payload)))
            })
            .collect();
        let seen = in_flight(&rt, origin).expect("registered");
        assert!(seen <= 2, "in flight {seen} with two deliveries");
        let results: Vec<_> = deliveries.into_iter().map(|d| d.join().unwrap()).collect();
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(DeliverError::Panicked { .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(
            in_flight(&rt, origin),
            Some(0),
            "every delivery gave its count back"
        );
        rt.shutdown();
    });
}
