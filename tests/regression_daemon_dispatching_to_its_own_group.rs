//! Regression (issue 18, adversarial testing): a daemon that dispatches to
//! its own group deadlocked forever. `deliver` took the replica's
//! non-reentrant lock a second time on the same thread; with one replica it
//! always happened, and with consistent-hash re-keying over N replicas about
//! 1 in N forwarded events landed back on their sender, which then stayed
//! locked for every other caller too. A delivery to a replica whose
//! `process` is running on the same thread is now refused with
//! `DeliverError::Reentrant`, and `dispatch` re-routes or returns the event
//! unprocessed with that reason; delivering to other replicas and other
//! groups from inside `process` keeps working.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use replica_router::*;
use replica_router_testkit::support::*;

/// The group a [`Forwarder`] forwards to, set once the group is spawned.
type Target = Arc<OnceLock<Arc<ReplicaGroup>>>;

/// What each forward returned, as text.
type Seen = Arc<Mutex<Vec<String>>>;

/// Forwards every event once to `target` (set after spawn), then answers
/// with what the forward returned (as text: the daemon itself never fails).
struct Forwarder {
    target: Target,
    seen: Seen,
}

impl MeshDaemon for Forwarder {
    fn name(&self) -> &str {
        "forwarder"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        if event.payload().starts_with(b"fwd:") {
            return Ok(vec![event.payload().clone()]);
        }
        let group = self.target.get().expect("target set");
        let forwarded = Event::new([&b"fwd:"[..], event.payload()].concat());
        let key = RequestContext::new().with_routing_key(event.payload());
        let outcome = format!("{:?}", group.dispatch(&key, &forwarded));
        self.seen.lock().unwrap().push(outcome.clone());
        Ok(vec![Bytes::from(outcome)])
    }
}

fn forwarding_group(
    rt: &DaemonRuntime,
    kind: &str,
    count: u8,
    seed: u8,
    strategy: Strategy,
) -> (Arc<ReplicaGroup>, Target, Seen) {
    let (target, seen): (Target, Seen) = Default::default();
    let (t, s) = (Arc::clone(&target), Arc::clone(&seen));
    rt.register_factory(kind, move || {
        Box::new(Forwarder {
            target: Arc::clone(&t),
            seen: Arc::clone(&s),
        })
    })
    .unwrap();
    let group = Arc::new(ReplicaGroup::spawn(rt, kind, config(count, seed, strategy)).unwrap());
    (group, target, seen)
}

#[test]
fn a_daemon_dispatching_to_its_own_single_replica_gets_the_event_back_unprocessed() {
    let rt = runtime(3, 1);
    let (group, target, seen) = forwarding_group(&rt, "self1", 1, 1, Strategy::RoundRobin);
    target.set(Arc::clone(&group)).unwrap();
    let g = Arc::clone(&group);
    let outcome = within(10, "a self-dispatch", move || {
        g.dispatch(&RequestContext::new(), &Event::new("hello"))
    });
    // The outer event was processed; the forward came back unprocessed,
    // with the reason.
    let answer = String::from_utf8(outcome.unwrap()[0].to_vec()).unwrap();
    assert!(answer.starts_with("Err(Exhausted"), "{answer}");
    assert!(answer.contains("Reentrant"), "{answer}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    // The replica is not left locked: the next delivery goes through.
    let origin = group.replicas()[0].origin_hash;
    let direct = rt.deliver(origin, &Event::new("fwd:direct")).unwrap();
    assert_eq!(&direct[0][..], b"fwd:direct");
    rt.shutdown();
}

#[test]
fn self_dispatch_with_several_replicas_reroutes_to_another_and_never_hangs() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::ConsistentHash,
        Strategy::LeastLatency,
    ] {
        let rt = runtime(4, 1);
        let (group, target, seen) = forwarding_group(&rt, "selfn", 4, 2, strategy);
        target.set(Arc::clone(&group)).unwrap();
        let g = Arc::clone(&group);
        let outcomes = within(20, "200 self-dispatches", move || {
            (0..200)
                .map(|i| g.dispatch(&RequestContext::new(), &Event::new(format!("e{i}"))))
                .collect::<Vec<_>>()
        });
        // Every outer event was processed once and answered; a forward that
        // landed back on its sender was re-routed to another replica, or
        // returned unprocessed with the reason (a key its sender owns).
        let mut rerouted_or_done = 0;
        for (i, outcome) in outcomes.iter().enumerate() {
            let answer = String::from_utf8(outcome.as_ref().unwrap()[0].to_vec()).unwrap();
            let processed = format!("{:?}", Ok::<_, ()>(vec![Bytes::from(format!("fwd:e{i}"))]));
            if answer == processed {
                rerouted_or_done += 1;
            } else {
                assert!(answer.contains("Reentrant"), "{strategy:?}: {answer}");
            }
        }
        assert!(rerouted_or_done > 0, "{strategy:?}: no forward got through");
        if strategy == Strategy::RoundRobin {
            // Round robin re-routes to the next replica: every forward lands.
            assert_eq!(rerouted_or_done, 200);
        }
        assert_eq!(seen.lock().unwrap().len(), 200, "{strategy:?}");
        rt.shutdown();
    }
}

#[test]
fn delivering_to_itself_is_reentrant_and_to_another_group_works() {
    struct Caller {
        runtime: Arc<OnceLock<DaemonRuntime>>,
        me: Arc<OnceLock<u64>>,
        other: Arc<OnceLock<u64>>,
    }
    impl MeshDaemon for Caller {
        fn name(&self) -> &str {
            "caller"
        }
        fn process(&mut self, _: &Event) -> Result<Vec<Bytes>, DaemonError> {
            let rt = self.runtime.get().unwrap();
            let to_me = rt.deliver(*self.me.get().unwrap(), &Event::new("x"));
            let to_other = rt.deliver(*self.other.get().unwrap(), &Event::new("y"));
            Ok(vec![Bytes::from(format!("{to_me:?}|{to_other:?}"))])
        }
    }
    let rt = runtime(3, 1);
    let cell: Arc<OnceLock<DaemonRuntime>> = Arc::default();
    let (me, other): (Arc<OnceLock<u64>>, Arc<OnceLock<u64>>) = Default::default();
    let (c, m, o) = (Arc::clone(&cell), Arc::clone(&me), Arc::clone(&other));
    rt.register_factory("caller", move || {
        Box::new(Caller {
            runtime: Arc::clone(&c),
            me: Arc::clone(&m),
            other: Arc::clone(&o),
        })
    })
    .unwrap();
    cell.set(rt.clone()).unwrap();
    let caller = ReplicaGroup::spawn(&rt, "caller", config(1, 3, Strategy::RoundRobin)).unwrap();
    let echo = ReplicaGroup::spawn(&rt, "echo", config(1, 4, Strategy::RoundRobin)).unwrap();
    me.set(caller.replicas()[0].origin_hash).unwrap();
    other.set(echo.replicas()[0].origin_hash).unwrap();
    let rt2 = rt.clone();
    let origin = *me.get().unwrap();
    let out = within(10, "a self-delivery", move || {
        rt2.deliver(origin, &Event::new("go"))
    })
    .unwrap();
    let text = String::from_utf8(out[0].to_vec()).unwrap();
    assert_eq!(
        text,
        format!(
            "{:?}|{:?}",
            Err::<Vec<Bytes>, _>(DeliverError::Reentrant(origin)),
            Ok::<_, DeliverError>(vec![Bytes::from("y")])
        )
    );
    rt.shutdown();
}
