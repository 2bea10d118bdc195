//! Chaos stress: two routing threads (one through `Router`s, one through
//! `route_event`), the runtime's writer, and a chaos thread that scales the
//! groups and fails and recovers nodes, for `STRESS_SECONDS` (default 5).
//!
//! Checked throughout:
//! - each reader's view of each group's epoch never decreases;
//! - once a change call has returned, no route returns a member it removed
//!   or left on a failed node (a route may see the change still in flight);
//! - no event is lost: every `dispatch` either delivered the event (the
//!   daemons processed exactly that many) or returned it unprocessed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use replica_router::*;
use replica_router_testkit::support::*;

const NODES: u64 = 8;

/// The healthy members of each group after each change, by change number.
type States = RwLock<Vec<[Vec<u64>; 2]>>;

/// What one reader counted.
#[derive(Default)]
struct Tally {
    routes: u64,
    dispatched: u64,
    delivered: u64,
    rejected: u64,
    /// Routes whose member no state recorded by then allowed: (group, first
    /// change, last change, member).
    suspects: Vec<(usize, usize, usize, u64)>,
}

#[test]
fn routing_under_chaos_keeps_epochs_removals_and_events() {
    let processed = Arc::new(AtomicUsize::new(0));
    let rt = runtime(NODES, 2);
    let counter = Arc::clone(&processed);
    rt.register_factory("counting", move || Box::new(Counting(Arc::clone(&counter))))
        .unwrap();
    let groups = Arc::new([
        ReplicaGroup::spawn(&rt, "counting", config(4, 31, Strategy::RoundRobin)).unwrap(),
        ReplicaGroup::spawn(&rt, "counting", config(3, 32, Strategy::LeastConnections)).unwrap(),
    ]);
    let states: Arc<States> = Arc::new(RwLock::new(vec![[
        healthy_hashes(&groups[0]),
        healthy_hashes(&groups[1]),
    ]]));
    let seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(env_or("STRESS_SECONDS", 5).min(60));

    let readers: Vec<_> = [true, false]
        .into_iter()
        .map(|use_router| {
            let (groups, states, seq, stop) = (
                Arc::clone(&groups),
                Arc::clone(&states),
                Arc::clone(&seq),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut routers = [groups[0].router(), groups[1].router()];
                let mut epochs = [0u64; 2];
                let mut tally = Tally::default();
                let mut k = 0u64;
                while !stop.load(Ordering::Acquire) {
                    k += 1;
                    let g = (k % 2) as usize;
                    let ctx = match k % 3 {
                        0 => RequestContext::new().with_zone("z1"),
                        1 => RequestContext::new().with_session(k),
                        _ => RequestContext::new(),
                    };
                    let first = seq.load(Ordering::Acquire) as usize;
                    let routed = if use_router {
                        routers[g].route(&ctx)
                    } else {
                        groups[g].route_event(&ctx)
                    };
                    let last = seq.load(Ordering::Acquire) as usize;
                    tally.routes += 1;
                    if let Ok(origin) = routed {
                        // Allowed by a state from `first` on; the change after
                        // `last` may be published but not yet recorded, so a
                        // route that fits no recorded state is checked again
                        // at the end, against every state.
                        let states = states.read().unwrap();
                        let to = (last + 1).min(states.len() - 1);
                        if !states[first..=to].iter().any(|s| s[g].contains(&origin)) {
                            tally.suspects.push((g, first, last, origin));
                        }
                    }
                    let epoch = groups[g].epoch();
                    assert!(
                        epoch >= epochs[g],
                        "group {g}: epoch {epoch} after {}",
                        epochs[g]
                    );
                    epochs[g] = epoch;

                    let event = Event::new(k.to_le_bytes().to_vec());
                    let outcome = if use_router {
                        routers[g].dispatch(&ctx, &event)
                    } else {
                        groups[g].dispatch(&ctx, &event)
                    };
                    tally.dispatched += 1;
                    match outcome {
                        Ok(outputs) => {
                            assert_eq!(outputs, vec![event.payload().clone()]);
                            tally.delivered += 1;
                        }
                        Err(e) => {
                            assert!(!e.was_processed(), "echo daemons never fail: {e}");
                            tally.rejected += 1;
                        }
                    }
                }
                tally
            })
        })
        .collect();

    let chaos = {
        let (groups, states, seq, rt) = (
            Arc::clone(&groups),
            Arc::clone(&states),
            Arc::clone(&seq),
            rt.clone(),
        );
        std::thread::spawn(move || {
            let mut script = XorShift::seeded(0x5eed_cafe);
            let mut changes = 0u64;
            while Instant::now() < deadline {
                let node = 1 + script.below(NODES);
                match script.below(6) {
                    0 => drop(groups[0].scale_to(1 + script.below(6) as u8)),
                    1 => drop(groups[1].scale_to(1 + script.below(5) as u8)),
                    2 | 3 => drop(rt.node_failed(node).unwrap()),
                    _ => drop(rt.node_recovered(node).unwrap()),
                }
                // The chaos thread is the only one changing anything, so this
                // is exactly the state the change left.
                let now = [healthy_hashes(&groups[0]), healthy_hashes(&groups[1])];
                states.write().unwrap().push(now);
                changes += 1;
                seq.store(changes, Ordering::Release);
            }
            changes
        })
    };

    let changes = chaos.join().unwrap();
    stop.store(true, Ordering::Release);
    let tallies: Vec<Tally> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    rt.shutdown();

    assert!(changes > 10, "the chaos thread made {changes} changes");
    let states = states.read().unwrap();
    for (reader, tally) in tallies.iter().enumerate() {
        assert!(
            tally.routes > 100,
            "reader {reader}: {} routes",
            tally.routes
        );
        // A route that began after change `first` returned and ended before
        // change `last + 2` was issued saw a roster from `first` to `last + 1`.
        let illegal: Vec<_> = tally
            .suspects
            .iter()
            .filter(|&&(g, first, last, origin)| {
                let to = (last + 1).min(states.len() - 1);
                !states[first..=to].iter().any(|s| s[g].contains(&origin))
            })
            .collect();
        assert!(
            illegal.is_empty(),
            "reader {reader} routed to members removed or on failed nodes after the change returned \
             ({} times; the first: (group, first change, last change, member)): {:x?}",
            illegal.len(),
            &illegal[..illegal.len().min(8)]
        );
        assert_eq!(tally.dispatched, tally.delivered + tally.rejected);
    }
    for (reader, t) in tallies.iter().enumerate() {
        eprintln!(
            "reader {reader}: {} routes, {} dispatched = {} delivered + {} rejected",
            t.routes, t.dispatched, t.delivered, t.rejected
        );
    }
    eprintln!("{changes} changes");
    let delivered: u64 = tallies.iter().map(|t| t.delivered).sum();
    assert!(delivered > 0);
    assert_eq!(
        processed.load(Ordering::SeqCst) as u64,
        delivered,
        "every delivered event was processed exactly once, and no rejected one was"
    );
}
