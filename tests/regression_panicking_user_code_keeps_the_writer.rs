//! Regression (issue 18, adversarial testing): a panic in
//! `MeshDaemon::requirements()` (called during `spawn`) or in a daemon's
//! `Drop` (run when `scale_to` shrinks) unwound through the writer thread and
//! killed it. From then on every change on every group returned
//! `ShuttingDown` while `is_ready()` still said `true`. Every call into user
//! code on the writer is now contained: the command that ran it fails with a
//! typed error naming the kind and the call (or, for a change already
//! published, is reported done), and the writer lives on.

use replica_router::*;
use replica_router_testkit::support::*;

fn volatile_runtime() -> DaemonRuntime {
    let rt = runtime(4, 1);
    rt.register_factory("unplaceable", || {
        Box::new(Volatile::new(PanicsIn::Requirements))
    })
    .unwrap();
    rt.register_factory("volatile", || {
        Box::new(Volatile::new(PanicsIn::LoadAndDrop))
    })
    .unwrap();
    rt
}

#[test]
fn a_panicking_requirements_fails_that_spawn_and_nothing_else() {
    let rt = volatile_runtime();
    let err =
        ReplicaGroup::spawn(&rt, "unplaceable", config(2, 1, Strategy::RoundRobin)).unwrap_err();
    let GroupError::DaemonPanicked(message) = &err else {
        panic!("expected DaemonPanicked, got {err:?}");
    };
    // The error says which kind and which call.
    assert!(message.contains("kind `unplaceable`"), "{message}");
    assert!(message.contains("requirements()"), "{message}");
    assert!(message.contains(DELIBERATE_PANIC), "{message}");
    assert!(rt.is_ready());
    // The writer lives on: other groups spawn, scale and fail over.
    let group = ReplicaGroup::spawn(&rt, "echo", config(2, 2, Strategy::RoundRobin)).unwrap();
    group.scale_to(3).unwrap();
    assert_eq!(rt.node_failed(group.replicas()[0].node_id), Ok(1));
    // Nothing of the failed spawn was left behind: its seed is free.
    ReplicaGroup::spawn(&rt, "echo", config(1, 1, Strategy::RoundRobin)).unwrap();
    rt.shutdown();
}

#[test]
fn a_panicking_drop_on_shrink_reports_the_shrink_done_and_the_writer_lives_on() {
    let rt = volatile_runtime();
    let group = ReplicaGroup::spawn(&rt, "volatile", config(3, 3, Strategy::RoundRobin)).unwrap();
    // Deliveries work; the daemon's panicking load() is contained too.
    let origin = group.route_event(&RequestContext::new()).unwrap();
    assert_eq!(rt.deliver(origin, &Event::new("x")).unwrap().len(), 1);
    // Shrinking drops two daemons, whose Drop panics: the shrink is done.
    assert_eq!(group.scale_to(1), Ok(()));
    assert_eq!(group.replica_count(), 1);
    // Failover drops the failed node's daemon: done too.
    let node = group.replicas()[0].node_id;
    assert_eq!(group.on_node_failure(node), Ok(vec![0]));
    assert!(rt.is_ready());
    assert_eq!(group.scale_to(3), Ok(()));
    assert_eq!(group.remove(), Ok(()));
    let other = ReplicaGroup::spawn(&rt, "volatile", config(2, 4, Strategy::LeastLoad)).unwrap();
    assert_eq!(other.health(), GroupHealth::Healthy);
    // Shutdown drops the rest, on the writer: it still returns.
    within(10, "shutdown with panicking drops", move || rt.shutdown());
}
