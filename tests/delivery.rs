//! Guarantee 10 of the crate docs (and the delivery rules around it): errors, panics,
//! no slot leak on the route path, factory panics, one event at a time.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn deliver_to_unknown_origin_is_unknown_origin() {
    let rt = runtime(3, 1);
    let _g = ReplicaGroup::spawn(&rt, "echo", config(3, 1, Strategy::RoundRobin)).unwrap();
    for o in [0u64, 1, u64::MAX, origin(2, 0), origin(1, 3)] {
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o))
        );
    }
    rt.shutdown();
}

#[test]
fn deliver_returns_the_daemon_outputs() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 2, Strategy::RoundRobin)).unwrap();
    let o = g.route_event(&RequestContext::new()).unwrap();
    assert_eq!(
        rt.deliver(o, &Event::new("hello")).unwrap(),
        vec![Bytes::from("hello")]
    );
    rt.shutdown();
}

#[test]
fn daemon_error_is_deliver_error_daemon() {
    let rt = runtime(3, 1);
    let g = ReplicaGroup::spawn(&rt, "flaky", config(2, 3, Strategy::RoundRobin)).unwrap();
    let o = g.replicas()[0].origin_hash;
    match rt.deliver(o, &Event::new("fail")) {
        Err(DeliverError::Daemon { origin_hash, error }) => {
            assert_eq!(origin_hash, o);
            assert!(
                matches!(error, DaemonError::ProcessFailed(ref m) if m.contains("asked to fail"))
            );
        }
        other => panic!("expected DeliverError::Daemon, got {other:?}"),
    }
    assert_eq!(
        rt.deliver(o, &Event::new("ok")).unwrap(),
        vec![Bytes::from("ok")]
    );
    rt.shutdown();
}

#[test]
fn panicking_daemon_is_deliver_error_panicked_and_runtime_keeps_working() {
    let rt = runtime(4, 1);
    let g = ReplicaGroup::spawn(&rt, "flaky", config(2, 4, Strategy::RoundRobin)).unwrap();
    let o = g.replicas()[0].origin_hash;
    match rt.deliver(o, &Event::new("panic")) {
        Err(DeliverError::Panicked {
            origin_hash,
            message,
        }) => {
            assert_eq!(origin_hash, o);
            assert!(message.contains("on purpose"), "{message}");
        }
        other => panic!("expected DeliverError::Panicked, got {other:?}"),
    }
    // The same replica, the group and the runtime all keep working.
    assert_eq!(
        rt.deliver(o, &Event::new("again")).unwrap(),
        vec![Bytes::from("again")]
    );
    for _ in 0..4 {
        let r = g.route_event(&RequestContext::new()).unwrap();
        rt.deliver(r, &Event::new("x")).unwrap();
    }
    g.scale_to(3).unwrap();
    rt.node_failed(g.replicas()[1].node_id).unwrap();
    let h = ReplicaGroup::spawn(&rt, "echo", config(2, 5, Strategy::RoundRobin)).unwrap();
    assert_eq!(h.replica_count(), 2);
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn routes_without_deliver_never_make_anything_unroutable() {
    let rt = runtime(3, 1);
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(3, 10 + i as u8, strategy)).unwrap();
        let all: BTreeSet<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
        let mut router = g.router();
        let mut seen_event = BTreeSet::new();
        let mut seen_router = BTreeSet::new();
        for k in 0..20_000u32 {
            let ctx = RequestContext::new();
            seen_event.insert(g.route_event(&ctx).unwrap());
            seen_router.insert(router.route(&ctx).unwrap());
            let keyed = RequestContext::new().with_routing_key(k.to_le_bytes());
            g.route_event(&keyed).unwrap();
            router.route(&keyed).unwrap();
        }
        assert_eq!(seen_event, all, "{strategy:?}");
        assert_eq!(seen_router, all, "{strategy:?}");
        // After 40,000 undelivered routes, every member is still chosen.
        let mut late = BTreeSet::new();
        for k in 0..3_000u32 {
            late.insert(g.route_event(&RequestContext::new()).unwrap());
            late.insert(
                router
                    .route(&RequestContext::new().with_session(u64::from(k)))
                    .unwrap(),
            );
        }
        assert_eq!(late, all, "{strategy:?}: a member became unroutable");
        assert_eq!(g.health(), GroupHealth::Healthy);
        for o in &all {
            rt.deliver(*o, &Event::new("x")).unwrap();
        }
    }
    rt.shutdown();
}

#[test]
fn panicking_factory_is_factory_failed_and_writer_lives_on() {
    let rt = runtime(4, 1);
    rt.register_factory("boom", || panic!("factory exploded"))
        .unwrap();
    let err = ReplicaGroup::spawn(&rt, "boom", config(2, 20, Strategy::RoundRobin)).unwrap_err();
    match &err {
        GroupError::FactoryFailed(msg) => {
            assert!(msg.contains("boom"), "names the kind: {msg}");
            assert!(msg.contains("factory exploded"), "carries the panic: {msg}");
        }
        other => panic!("expected FactoryFailed, got {other:?}"),
    }
    for i in 0..2 {
        let o = origin(20, i);
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o))
        );
    }
    // The writer lives on: the next spawn, scale and failover work.
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 21, Strategy::RoundRobin)).unwrap();
    g.scale_to(4).unwrap();
    assert_eq!(rt.node_failed(1).unwrap(), 0);
    assert!(rt.is_ready());
    rt.shutdown();
}

#[test]
fn factory_panicking_midway_leaves_nothing_registered() {
    let rt = runtime(6, 2);
    let calls = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (c, d) = (Arc::clone(&calls), Arc::clone(&dropped));
    rt.register_factory("third-fails", move || {
        if c.fetch_add(1, Ordering::SeqCst) == 2 {
            panic!("third replica cannot be made");
        }
        Box::new(DropCounter(Arc::clone(&d)))
    })
    .unwrap();
    let err =
        ReplicaGroup::spawn(&rt, "third-fails", config(4, 22, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(err, GroupError::FactoryFailed(_)), "{err:?}");
    for i in 0..4 {
        let o = origin(22, i);
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o))
        );
    }
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the two made daemons were released"
    );
    assert!(format!("{rt:?}").contains("replicas: 0"), "{rt:?}");
    // Growth that hits the panic is all-or-nothing too.
    let g = ReplicaGroup::spawn(&rt, "third-fails", config(4, 23, Strategy::RoundRobin)).unwrap();
    assert_eq!(g.replica_count(), 4);
    calls.store(2, Ordering::SeqCst);
    let (replicas, epoch) = (g.replicas(), g.epoch());
    let err = g.scale_to(6).unwrap_err();
    assert!(matches!(err, GroupError::FactoryFailed(_)), "{err:?}");
    assert_eq!((g.replicas(), g.epoch()), (replicas, epoch));
    for i in 4..6 {
        let o = origin(23, i);
        assert_eq!(
            rt.deliver(o, &Event::new("x")),
            Err(DeliverError::UnknownOrigin(o))
        );
    }
    rt.shutdown();
}

/// Detects overlapping calls to `process` on one daemon instance.
struct Exclusive {
    inside: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
    processed: Arc<AtomicUsize>,
}

impl MeshDaemon for Exclusive {
    fn name(&self) -> &str {
        "exclusive"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let until = Instant::now() + Duration::from_micros(20);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.processed.fetch_add(1, Ordering::SeqCst);
        self.inside.store(false, Ordering::SeqCst);
        Ok(vec![event.payload().clone()])
    }
}

#[test]
fn one_daemon_processes_one_event_at_a_time() {
    let rt = runtime(2, 1);
    let overlaps = Arc::new(AtomicUsize::new(0));
    let processed = Arc::new(AtomicUsize::new(0));
    let (o2, p2) = (Arc::clone(&overlaps), Arc::clone(&processed));
    rt.register_factory("exclusive", move || {
        Box::new(Exclusive {
            inside: Arc::new(AtomicBool::new(false)),
            overlaps: Arc::clone(&o2),
            processed: Arc::clone(&p2),
        })
    })
    .unwrap();
    let g = ReplicaGroup::spawn(&rt, "exclusive", config(1, 30, Strategy::RoundRobin)).unwrap();
    let target = g.route_event(&RequestContext::new()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    rt.deliver(target, &Event::new("x")).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(processed.load(Ordering::SeqCst), 2_000);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "process was entered concurrently"
    );
    rt.shutdown();
}

/// Waits inside `process` until two events are inside at once (or gives up).
struct Rendezvous(Arc<AtomicUsize>);

impl MeshDaemon for Rendezvous {
    fn name(&self) -> &str {
        "rendezvous"
    }
    fn process(&mut self, _event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.load(Ordering::SeqCst) < 2 {
            if Instant::now() > deadline {
                return Err(DaemonError::ProcessFailed("alone".into()));
            }
            std::thread::yield_now();
        }
        Ok(Vec::new())
    }
}

#[test]
fn different_replicas_process_in_parallel() {
    let rt = runtime(2, 1);
    let inside = Arc::new(AtomicUsize::new(0));
    let i2 = Arc::clone(&inside);
    rt.register_factory("rendezvous", move || Box::new(Rendezvous(Arc::clone(&i2))))
        .unwrap();
    let g = ReplicaGroup::spawn(&rt, "rendezvous", config(2, 31, Strategy::RoundRobin)).unwrap();
    let threads: Vec<_> = g
        .replicas()
        .into_iter()
        .map(|m| {
            let rt = rt.clone();
            std::thread::spawn(move || rt.deliver(m.origin_hash, &Event::new("x")))
        })
        .collect();
    for t in threads {
        assert_eq!(
            t.join().unwrap(),
            Ok(Vec::new()),
            "the replicas waited for each other"
        );
    }
    rt.shutdown();
}
