//! Guarantee 8 of the crate docs under concurrency: readers route (route_event and
//! Router) while a churn thread scales groups and fails / recovers nodes.
//! Once a change call has returned, no route that starts afterwards may pick
//! a member it removed or left on a failed node. Also: moving a replica
//! swaps its registry entry in one step, so delivery never misses it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use replica_router::*;
use replica_router_testkit::support::*;

const SEED_A: u8 = 1;
const SEED_B: u8 = 2;

/// Allowed origin hashes (healthy members) of each group after change `seq`.
type States = RwLock<Vec<[BTreeSet<u64>; 2]>>;

fn allowed(g: &ReplicaGroup) -> BTreeSet<u64> {
    healthy_hashes(g).into_iter().collect()
}

/// A route result to re-check once every state is known.
#[derive(Debug)]
struct Suspect {
    group: usize,
    from: usize,
    to: usize,
    hash: u64,
}

fn legal(states: &[[BTreeSet<u64>; 2]], group: usize, from: usize, to: usize, hash: u64) -> bool {
    let to = to.min(states.len() - 1);
    states[from..=to].iter().any(|s| s[group].contains(&hash))
}

#[test]
fn routes_never_return_members_removed_or_on_failed_nodes_under_churn() {
    let rt = runtime(8, 2);
    let a = Arc::new(
        ReplicaGroup::spawn(&rt, "echo", config(4, SEED_A, Strategy::RoundRobin)).unwrap(),
    );
    let b = Arc::new(
        ReplicaGroup::spawn(&rt, "echo", config(5, SEED_B, Strategy::ConsistentHash)).unwrap(),
    );
    let states: Arc<States> = Arc::new(RwLock::new(vec![[allowed(&a), allowed(&b)]]));
    let seq = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let suspects = Arc::new(Mutex::new(Vec::<Suspect>::new()));
    let routes = Arc::new(AtomicUsize::new(0));

    let mut readers = Vec::new();
    for reader in 0..3usize {
        let (a, b) = (Arc::clone(&a), Arc::clone(&b));
        let (states, seq, stop) = (Arc::clone(&states), Arc::clone(&seq), Arc::clone(&stop));
        let (suspects, routes) = (Arc::clone(&suspects), Arc::clone(&routes));
        readers.push(std::thread::spawn(move || {
            let mut routers = [a.router(), b.router()];
            let groups = [&a, &b];
            let mut k = 0u64;
            while !stop.load(Ordering::Acquire) {
                k += 1;
                let group = (k % 2) as usize;
                let ctx = if k % 3 == 0 {
                    RequestContext::new()
                } else {
                    RequestContext::new().with_routing_key(k.to_le_bytes())
                };
                let from = seq.load(Ordering::Acquire);
                let got = if reader == 2 {
                    routers[group].route(&ctx)
                } else {
                    groups[group].route_event(&ctx)
                };
                let to = seq.load(Ordering::Acquire);
                let hash = got.unwrap_or_else(|e| panic!("route failed: {e}"));
                let ok = legal(&states.read().unwrap(), group, from, to, hash);
                if !ok {
                    // Maybe picked from the change in progress (to + 1).
                    suspects.lock().unwrap().push(Suspect {
                        group,
                        from,
                        to: to + 1,
                        hash,
                    });
                }
                routes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // A deliverer: replica 0 of group a is never removed, and moving it
    // must never make it unknown to delivery.
    let deliverer = {
        let (rt, stop) = (rt.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let o = origin(SEED_A, 0);
            let mut n = 0usize;
            while !stop.load(Ordering::Acquire) {
                match rt.deliver(o, &Event::new("x")) {
                    Ok(_) => n += 1,
                    Err(e) => panic!("delivery to a live replica failed: {e}"),
                }
            }
            n
        })
    };

    // The churn thread (this one).
    let mut rng = XorShift::seeded(1);
    let mut failed: BTreeSet<u64> = BTreeSet::new();
    let mut group_failed: Vec<u64> = Vec::new();
    let started = Instant::now();
    let mut changes = 0usize;
    while started.elapsed() < Duration::from_millis(2_500) {
        match rng.below(7) {
            0 | 1 => {
                let g = if rng.below(2) == 0 { &a } else { &b };
                match g.scale_to(2 + rng.below(5) as u8) {
                    // Failed and group-excluded nodes can leave too few for growth.
                    Ok(()) | Err(GroupError::PlacementFailed(_)) => {}
                    Err(e) => panic!("scale_to failed: {e}"),
                }
            }
            2 if failed.len() < 2 => {
                let node = 1 + rng.below(8);
                if failed.insert(node) {
                    rt.node_failed(node).unwrap();
                }
            }
            3 if !failed.is_empty() => {
                let node = *failed
                    .iter()
                    .nth(rng.below(failed.len() as u64) as usize)
                    .unwrap();
                failed.remove(&node);
                rt.node_recovered(node).unwrap();
            }
            4 if group_failed.is_empty() => {
                let node = 1 + rng.below(8);
                let g = if rng.below(2) == 0 { &a } else { &b };
                g.on_node_failure(node).unwrap();
                group_failed.push(node);
            }
            5 => {
                if let Some(node) = group_failed.pop() {
                    a.on_node_recovery(node);
                    b.on_node_recovery(node);
                }
            }
            _ => {
                // Keep readers busy between changes.
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        let now = [allowed(&a), allowed(&b)];
        assert!(
            !now[0].is_empty() && !now[1].is_empty(),
            "the script keeps members healthy"
        );
        let mut s = states.write().unwrap();
        s.push(now);
        seq.store(s.len() - 1, Ordering::Release);
        drop(s);
        changes += 1;
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        r.join().expect("a reader failed");
    }
    let delivered = deliverer.join().expect("the deliverer failed");

    let states = states.read().unwrap();
    let suspects = suspects.lock().unwrap();
    let violations: Vec<&Suspect> = suspects
        .iter()
        .filter(|s| !legal(&states, s.group, s.from, s.to, s.hash))
        .collect();
    eprintln!(
        "{changes} changes, {} routes, {delivered} deliveries, {} routes saw a change in progress",
        routes.load(Ordering::Relaxed),
        suspects.len()
    );
    assert!(changes > 50, "the churn made too few changes ({changes})");
    assert!(routes.load(Ordering::Relaxed) > 1_000);
    assert!(
        violations.is_empty(),
        "routes picked forbidden members: {violations:?}"
    );
    rt.shutdown();
}

#[test]
fn delivery_never_misses_a_replica_while_it_moves() {
    // Node 1 fails and recovers over and over; the replica that lives there
    // moves between nodes with the same identity.
    let rt = runtime(6, 1);
    let g = ReplicaGroup::spawn(&rt, "echo", config(3, 3, Strategy::RoundRobin)).unwrap();
    let origins: Vec<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (rt, stop, origins) = (rt.clone(), Arc::clone(&stop), origins.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Acquire) {
                    for &o in &origins {
                        rt.deliver(o, &Event::new("x"))
                            .unwrap_or_else(|e| panic!("delivery missed a moving replica: {e}"));
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let started = Instant::now();
    let mut moves = 0;
    // At least 20 moves and 800 ms of them (bounded at 10 s on a busy machine).
    while (started.elapsed() < Duration::from_millis(800) || moves < 20)
        && started.elapsed() < Duration::from_secs(10)
    {
        for m in g.replicas() {
            moves += rt.node_failed(m.node_id).unwrap();
            rt.node_recovered(m.node_id).unwrap();
        }
    }
    stop.store(true, Ordering::Release);
    let delivered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!("{moves} moves, {delivered} deliveries");
    assert!(moves >= 20, "only {moves} moves");
    assert_eq!(g.health(), GroupHealth::Healthy);
    rt.shutdown();
}

#[test]
fn routers_on_many_threads_agree_on_consistent_hash_owners() {
    let rt = runtime(10, 2);
    let g = Arc::new(
        ReplicaGroup::spawn(&rt, "echo", config(10, 4, Strategy::ConsistentHash)).unwrap(),
    );
    let expected: Vec<u64> = {
        let mut r = g.router();
        (0..2_000u32)
            .map(|k| {
                r.route(&RequestContext::new().with_routing_key(k.to_le_bytes()))
                    .unwrap()
            })
            .collect()
    };
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let (g, expected) = (Arc::clone(&g), Arc::clone(&expected));
            std::thread::spawn(move || {
                let mut r = g.router();
                for k in 0..2_000u32 {
                    let ctx = RequestContext::new().with_routing_key(k.to_le_bytes());
                    let got = if t == 0 {
                        r.route(&ctx)
                    } else {
                        g.route_event(&ctx)
                    };
                    assert_eq!(got.unwrap(), expected[k as usize]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.shutdown();
}
