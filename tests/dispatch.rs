//! `dispatch` loses nothing: every event is processed exactly once by a live
//! member, or returned unprocessed with the reason.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn dispatch_delivers_to_a_live_member() {
    let rt = runtime(3, 1);
    let group = ReplicaGroup::spawn(&rt, "echo", config(2, 90, Strategy::RoundRobin)).unwrap();
    let out = group
        .dispatch(&RequestContext::new(), &Event::new("a"))
        .unwrap();
    assert_eq!(&out[0][..], b"a");
    let mut router = group.router();
    let out = router
        .dispatch(&RequestContext::new(), &Event::new("b"))
        .unwrap();
    assert_eq!(&out[0][..], b"b");
}

#[test]
fn dispatch_reports_daemon_failures_as_processed_and_does_not_retry() {
    let processed = Arc::new(AtomicUsize::new(0));
    struct AlwaysFails(Arc<AtomicUsize>);
    impl MeshDaemon for AlwaysFails {
        fn name(&self) -> &str {
            "fail"
        }
        fn process(&mut self, _: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(DaemonError::ProcessFailed("no".into()))
        }
    }
    let rt = runtime(3, 1);
    let p = Arc::clone(&processed);
    rt.register_factory("fail", move || Box::new(AlwaysFails(Arc::clone(&p))))
        .unwrap();
    let group = ReplicaGroup::spawn(&rt, "fail", config(3, 91, Strategy::RoundRobin)).unwrap();
    let err = group
        .dispatch(&RequestContext::new(), &Event::new("x"))
        .unwrap_err();
    assert!(err.was_processed(), "{err}");
    assert!(matches!(
        err,
        DispatchError::Failed(DeliverError::Daemon { .. })
    ));
    assert_eq!(
        processed.load(Ordering::SeqCst),
        1,
        "processed exactly once"
    );
}

#[test]
fn dispatch_with_no_healthy_member_returns_the_event_unprocessed() {
    let rt = runtime(1, 1);
    let group = ReplicaGroup::spawn(&rt, "echo", config(1, 92, Strategy::RoundRobin)).unwrap();
    rt.node_failed(1).unwrap();
    let err = group
        .dispatch(&RequestContext::new(), &Event::new("x"))
        .unwrap_err();
    assert_eq!(err, DispatchError::Route(GroupError::NoHealthyMember));
    assert!(!err.was_processed());
    rt.shutdown();
    let err = group
        .dispatch(&RequestContext::new(), &Event::new("x"))
        .unwrap_err();
    assert_eq!(err, DispatchError::ShuttingDown);
}

#[test]
fn dispatch_under_scale_and_failover_churn_loses_no_event() {
    let processed = Arc::new(AtomicUsize::new(0));
    let rt = runtime(8, 2);
    let p = Arc::clone(&processed);
    rt.register_factory("count", move || Box::new(Counting(Arc::clone(&p))))
        .unwrap();
    let group =
        Arc::new(ReplicaGroup::spawn(&rt, "count", config(4, 93, Strategy::RoundRobin)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (group, stop) = (Arc::clone(&group), Arc::clone(&stop));
            thread::spawn(move || {
                let (mut ok, mut unprocessed, mut failed, mut rerouted) = (0, 0, 0, 0);
                let mut router = group.router();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let ctx = RequestContext::new();
                    let result = if (n + t) % 2 == 0 {
                        group.dispatch(&ctx, &Event::new("e"))
                    } else {
                        router.dispatch(&ctx, &Event::new("e"))
                    };
                    match result {
                        Ok(_) => ok += 1,
                        Err(e) if e.was_processed() => failed += 1,
                        Err(DispatchError::Exhausted { .. }) => rerouted += 1,
                        Err(_) => unprocessed += 1,
                    }
                }
                (n, ok, failed, unprocessed + rerouted)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        group.scale_to(1 + (i % 4) as u8).unwrap();
        let node = 1 + i % 8;
        rt.node_failed(node).unwrap();
        rt.node_recovered(node).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (mut total, mut ok, mut failed, mut unprocessed) = (0, 0, 0, 0);
    for w in workers {
        let (n, o, f, u) = w.join().unwrap();
        (total, ok, failed, unprocessed) = (total + n, ok + o, failed + f, unprocessed + u);
    }
    assert!(i > 50, "churn ran {i} rounds");
    assert_eq!(failed, 0, "echo daemons never fail");
    assert_eq!(ok + unprocessed, total, "every event has an outcome");
    assert_eq!(
        processed.load(Ordering::SeqCst) as u64,
        ok,
        "every Ok was processed exactly once, and nothing else was"
    );
    assert!(ok > 1_000, "dispatches succeeded: {ok}");
}
