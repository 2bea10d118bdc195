//! Load-aware strategies steer away from a replica with a delivery in flight
//! while others are idle, and come back to it once it is idle.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use replica_router::*;

/// A latch a daemon waits on while it is closed.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Gate {
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
    fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }
    fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Blocks on the gate for payload `hold`, returns at once otherwise.
struct Gated(Arc<Gate>);

impl MeshDaemon for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        if &event.payload()[..] == b"hold" {
            self.0.wait();
        }
        Ok(vec![])
    }
}

fn gated_group(strategy: Strategy, count: u8) -> (DaemonRuntime, ReplicaGroup, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let rt = DaemonRuntime::new(nodes(count.into(), 1));
    let g = Arc::clone(&gate);
    rt.register_factory("gated", move || Box::new(Gated(Arc::clone(&g))))
        .unwrap();
    rt.start().unwrap();
    let group = ReplicaGroup::spawn(&rt, "gated", config(count, 70, strategy)).unwrap();
    (rt, group, gate)
}

/// Keeps one delivery in flight on `origin` until the gate opens.
fn hold(rt: &DaemonRuntime, gate: &Arc<Gate>, origin: u64) -> thread::JoinHandle<()> {
    gate.close();
    let rt = rt.clone();
    let handle = thread::spawn(move || {
        rt.deliver(origin, &Event::new("hold")).unwrap();
    });
    while gate.waiting.load(Ordering::SeqCst) == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    handle
}

fn busy_replica_is_avoided_then_used_again(strategy: Strategy) {
    let (rt, group, gate) = gated_group(strategy, 4);
    let busy = group.replicas()[2].origin_hash;
    let held = hold(&rt, &gate, busy);
    let mut router = group.router();
    for _ in 0..2_000 {
        let picked = router.route(&RequestContext::new()).unwrap();
        assert_ne!(
            picked, busy,
            "{strategy:?} picked the busy replica while others were idle"
        );
        let picked = group.route_event(&RequestContext::new()).unwrap();
        assert_ne!(
            picked, busy,
            "{strategy:?} route_event picked the busy replica"
        );
    }
    gate.open();
    held.join().unwrap();
    let back = (0..200).any(|_| router.route(&RequestContext::new()).unwrap() == busy);
    assert!(
        back,
        "{strategy:?} never returned to the replica once it was idle"
    );
}

#[test]
fn least_connections_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::LeastConnections);
}

#[test]
fn weighted_least_connections_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::WeightedLeastConnections);
}

#[test]
fn power_of_two_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::PowerOfTwo);
}

#[test]
fn least_load_avoids_a_busy_replica_and_returns_when_idle() {
    busy_replica_is_avoided_then_used_again(Strategy::LeastLoad);
}

#[test]
fn adaptive_steers_most_traffic_away_from_a_busy_replica() {
    let (rt, group, gate) = gated_group(Strategy::Adaptive, 4);
    let busy = group.replicas()[1].origin_hash;
    let held = hold(&rt, &gate, busy);
    let mut router = group.router();
    let picked_busy = (0..4_000)
        .filter(|_| router.route(&RequestContext::new()).unwrap() == busy)
        .count();
    gate.open();
    held.join().unwrap();
    // The busy member can only come from the schedule, and then the second
    // member drawn (always another, idle one) has fewer in flight and wins.
    assert_eq!(
        picked_busy, 0,
        "busy replica got {picked_busy} of 4000 routes"
    );
}

#[test]
fn least_latency_tries_every_unmeasured_member_before_repeating_one() {
    let (rt, group, _gate) = gated_group(Strategy::LeastLatency, 4);
    let mut router = group.router();
    let mut first: Vec<u64> = (0..4)
        .map(|_| {
            let o = router.route(&RequestContext::new()).unwrap();
            rt.deliver(o, &Event::new("x")).unwrap();
            o
        })
        .collect();
    first.sort_unstable();
    first.dedup();
    assert_eq!(first.len(), 4, "every unmeasured member is tried first");
}
