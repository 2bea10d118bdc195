//! Runtime lifecycle: Registering → Ready → ShuttingDown, factories (guarantee 14),
//! and what every entry point answers after shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn spawn_before_start_is_not_ready() {
    let rt = DaemonRuntime::new(nodes(3, 1));
    rt.register_factory("echo", || Box::new(Echo)).unwrap();
    assert!(!rt.is_ready());
    let err = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap_err();
    assert_eq!(err, GroupError::NotReady);
    rt.start().unwrap();
    assert!(rt.is_ready());
    // Nothing was left behind by the refused spawn: the same seed works now.
    let g = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
    assert_eq!(g.replica_count(), 2);
    rt.shutdown();
}

#[test]
fn start_twice_is_fine() {
    let rt = runtime(2, 1);
    rt.start().unwrap();
    assert!(rt.is_ready());
    rt.shutdown();
}

#[test]
fn register_factory_twice_is_duplicate_kind() {
    let rt = DaemonRuntime::new(nodes(2, 1));
    rt.register_factory("echo", || Box::new(Echo)).unwrap();
    assert_eq!(
        rt.register_factory("echo", || Box::new(Echo)),
        Err(RuntimeError::DuplicateKind("echo".into()))
    );
    rt.start().unwrap();
    assert_eq!(
        rt.register_factory("echo", || Box::new(Echo)),
        Err(RuntimeError::DuplicateKind("echo".into()))
    );
    rt.shutdown();
}

#[test]
fn register_factory_after_start_works_and_spawns() {
    let rt = runtime(3, 1);
    let processed = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&processed);
    rt.register_factory("counting", move || Box::new(Counting(Arc::clone(&p))))
        .unwrap();
    let g = ReplicaGroup::spawn(&rt, "counting", config(3, 2, Strategy::RoundRobin)).unwrap();
    assert_eq!(g.kind(), "counting");
    for _ in 0..6 {
        let o = g.route_event(&RequestContext::new()).unwrap();
        rt.deliver(o, &Event::new("x")).unwrap();
    }
    assert_eq!(processed.load(Ordering::SeqCst), 6);
    rt.shutdown();
}

#[test]
fn spawn_of_unknown_kind_is_factory_not_found() {
    let rt = runtime(3, 1);
    let err = ReplicaGroup::spawn(&rt, "nope", config(2, 3, Strategy::RoundRobin)).unwrap_err();
    assert_eq!(err, GroupError::FactoryNotFound("nope".into()));
    rt.shutdown();
}

#[test]
fn everything_after_shutdown_is_shutting_down() {
    let rt = runtime(5, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 4, Strategy::RoundRobin)).unwrap();
    let mut router = g.router();
    let origins: Vec<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    let node = g.replicas()[0].node_id;
    rt.deliver(origins[0], &Event::new("ok")).unwrap();

    rt.shutdown();
    assert!(!rt.is_ready());

    assert_eq!(
        ReplicaGroup::spawn(&rt, "echo", config(1, 5, Strategy::RoundRobin)).unwrap_err(),
        GroupError::ShuttingDown
    );
    assert_eq!(g.scale_to(2), Err(GroupError::ShuttingDown));
    assert_eq!(g.scale_to(4), Err(GroupError::ShuttingDown));
    assert_eq!(g.on_node_failure(node), Err(GroupError::ShuttingDown));
    g.on_node_recovery(node); // must not hang or panic
    let ctx = RequestContext::new();
    assert_eq!(g.route_event(&ctx), Err(GroupError::ShuttingDown));
    assert_eq!(router.route(&ctx), Err(GroupError::ShuttingDown));
    assert_eq!(g.router().route(&ctx), Err(GroupError::ShuttingDown));
    assert_eq!(
        rt.add_node(NodeInfo::new(99)),
        Err(RuntimeError::ShuttingDown)
    );
    assert_eq!(rt.node_failed(node), Err(RuntimeError::ShuttingDown));
    assert_eq!(rt.node_recovered(node), Err(RuntimeError::ShuttingDown));
    assert_eq!(
        rt.register_factory("late", || Box::new(Echo)),
        Err(RuntimeError::ShuttingDown)
    );
    assert_eq!(rt.start(), Err(RuntimeError::ShuttingDown));
    for o in origins {
        assert!(
            rt.deliver(o, &Event::new("late")).is_err(),
            "deliver to a replica of a shut-down runtime must fail"
        );
        assert_eq!(
            rt.deliver(o, &Event::new("late")),
            Err(DeliverError::ShuttingDown)
        );
    }
}

#[test]
fn shutdown_unregisters_and_drops_every_daemon() {
    let rt = runtime(4, 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    rt.register_factory("drop", move || Box::new(DropCounter(Arc::clone(&d))))
        .unwrap();
    let a = ReplicaGroup::spawn(&rt, "drop", config(3, 6, Strategy::RoundRobin)).unwrap();
    let b = ReplicaGroup::spawn(&rt, "drop", config(4, 7, Strategy::Random)).unwrap();
    // Route on this thread so the per-thread cache holds a roster too.
    a.route_event(&RequestContext::new()).unwrap();
    b.route_event(&RequestContext::new()).unwrap();
    let _router = a.router();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert!(format!("{rt:?}").contains("replicas: 7"), "{rt:?}");
    rt.shutdown();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        7,
        "every daemon is released at shutdown"
    );
    assert!(format!("{rt:?}").contains("replicas: 0"), "{rt:?}");
    assert_eq!(a.health(), GroupHealth::Dead);
    assert_eq!(a.replica_count(), 0);
}

#[test]
fn shutdown_twice_is_fine() {
    let rt = runtime(2, 1);
    let _g = ReplicaGroup::spawn(&rt, "echo", config(2, 8, Strategy::RoundRobin)).unwrap();
    rt.shutdown();
    rt.shutdown();
    let clone = rt.clone();
    clone.shutdown();
}

#[test]
fn dropping_a_runtime_without_shutdown_does_not_hang() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&drops);
    within(10, "dropping runtime and groups", move || {
        let rt = runtime(3, 1);
        rt.register_factory("drop", move || Box::new(DropCounter(Arc::clone(&d))))
            .unwrap();
        let g = ReplicaGroup::spawn(&rt, "drop", config(3, 9, Strategy::RoundRobin)).unwrap();
        let o = g.route_event(&RequestContext::new()).unwrap();
        rt.deliver(o, &Event::new("x")).unwrap();
        let clone = rt.clone();
        drop(rt);
        // The group and a clone still keep the runtime alive.
        assert!(g.route_event(&RequestContext::new()).is_ok());
        drop(clone);
        drop(g);
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "dropping the last handle tears the replicas down"
    );
    // A runtime that was never started, and one without groups.
    within(10, "dropping idle runtimes", || {
        drop(DaemonRuntime::new(nodes(2, 1)));
        drop(runtime(2, 1));
    });
}

#[test]
fn calling_the_runtime_from_a_factory_does_not_deadlock() {
    let cell: Arc<OnceLock<DaemonRuntime>> = Arc::new(OnceLock::new());
    let answers: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let rt = runtime(4, 1);
    cell.set(rt.clone()).unwrap();
    let (c, a) = (Arc::clone(&cell), Arc::clone(&answers));
    rt.register_factory("reentrant", move || {
        let rt = c.get().unwrap();
        let r = rt.add_node(NodeInfo::new(100));
        a.lock().unwrap().push(format!("{r:?}"));
        Box::new(Echo)
    })
    .unwrap();
    let rt2 = rt.clone();
    let g = within(10, "spawn with a re-entrant factory", move || {
        ReplicaGroup::spawn(&rt2, "reentrant", config(2, 10, Strategy::RoundRobin))
    })
    .unwrap();
    assert_eq!(g.replica_count(), 2);
    assert!(answers
        .lock()
        .unwrap()
        .iter()
        .all(|r| r == &format!("{:?}", Err::<(), _>(RuntimeError::CalledFromWriter))));
    // The runtime is still fine.
    assert!(rt.is_ready());
    assert!(g.route_event(&RequestContext::new()).is_ok());
    rt.shutdown();
}

#[test]
fn shutdown_from_inside_a_factory_does_not_deadlock() {
    let cell: Arc<OnceLock<DaemonRuntime>> = Arc::new(OnceLock::new());
    let rt = runtime(4, 1);
    cell.set(rt.clone()).unwrap();
    let c = Arc::clone(&cell);
    rt.register_factory("quitter", move || {
        c.get().unwrap().shutdown();
        Box::new(Echo)
    })
    .unwrap();
    let rt2 = rt.clone();
    let spawned = within(10, "spawn with a factory that shuts down", move || {
        ReplicaGroup::spawn(&rt2, "quitter", config(2, 11, Strategy::RoundRobin))
    });
    within(10, "shutdown after an in-factory shutdown", {
        let rt = rt.clone();
        move || rt.shutdown()
    });
    assert!(!rt.is_ready());
    if let Ok(g) = spawned {
        assert_eq!(
            g.route_event(&RequestContext::new()),
            Err(GroupError::ShuttingDown)
        );
    }
    assert_eq!(
        ReplicaGroup::spawn(&rt, "echo", config(1, 12, Strategy::RoundRobin)).unwrap_err(),
        GroupError::ShuttingDown
    );
}
