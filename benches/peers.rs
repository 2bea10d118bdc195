//! Peers a user would pick instead: the same routes through
//! `pingora-load-balancing` (Cloudflare's Pingora), side by side with ours in
//! one run, on the same member counts and the same 1,024 keys.
//!
//! `scripts/bench-peers.sh` (installs `cmake` when missing), or
//! `cargo bench --features bench-peers --bench peers`.
//!
//! - Round robin: pingora's `LoadBalancer<RoundRobin>::select(key, 256)`
//!   against our `Router::route` and `route_event` with `RoundRobin`.
//! - Consistent hashing: pingora's `LoadBalancer<Consistent>` (Ketama)
//!   `select(key, 256)` against ours with `ConsistentHash` and a routing key.
//!   pingora hashes the key inside `select`; ours hashes it when the
//!   `RequestContext` is built, so `router+ctx` also times building the
//!   context (`RequestContext::new().with_routing_key(key)`) on every route.
//!
//! `select`'s second argument bounds how many backends it tries; 256 covers
//! every member count here, and with every backend healthy the first one
//! tried is taken. Each backend is a distinct IPv4 address (pingora keys
//! backends by socket address).

#![allow(missing_docs)] // criterion's items and our helpers need no docs.

mod harness;

use criterion::Criterion;
use harness::{per_thread, thread_counts, threads_label, timed, Contender};
use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent, RoundRobin};
use pingora_load_balancing::LoadBalancer;
use replica_router::*;
use std::time::Duration;

const MEMBERS: [u8; 4] = [3, 8, 64, 255];

/// A pingora load balancer over `members` static backends.
fn pingora<S>(members: u8) -> LoadBalancer<S>
where
    S: BackendSelection + 'static,
    S::Iter: BackendIter,
{
    let addrs: Vec<String> = (0..u32::from(members))
        .map(|i| format!("10.0.{}.{}:80", i / 250, i % 250 + 1))
        .collect();
    LoadBalancer::try_from_iter(addrs.iter().map(String::as_str)).unwrap()
}

fn compare(c: &mut Criterion) {
    let keys = harness::keys();
    let key_bytes: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    for (name, strategy, keyed) in [
        ("round robin", Strategy::RoundRobin, false),
        ("consistent hash", Strategy::ConsistentHash, true),
    ] {
        let ctxs = harness::contexts(keyed);
        for members in MEMBERS {
            let runtime = harness::runtime(u64::from(members));
            let group = harness::spawn(&runtime, 0, members, strategy);
            let rr = pingora::<RoundRobin>(members);
            let ketama = pingora::<Consistent>(members);
            let scenario = format!("{name} · {members} members");
            let mut bench = c.benchmark_group(format!(
                "peers/{}/{members}_members",
                name.replace(' ', "_")
            ));
            for threads in thread_counts() {
                let variant = threads_label(threads);
                let (group, ctxs, key_bytes, rr, ketama) =
                    (&group, &ctxs, &key_bytes, &rr, &ketama);
                let mut contenders = vec![Contender::new("router", move |iters| {
                    per_thread(threads, iters, |iters, barrier| {
                        let mut router = group.router();
                        timed(iters, ctxs, barrier, |c| router.route(c).ok())
                    })
                })];
                if keyed {
                    contenders.push(Contender::new("router+ctx", move |iters| {
                        per_thread(threads, iters, |iters, barrier| {
                            let mut router = group.router();
                            timed(iters, key_bytes, barrier, |k| {
                                router
                                    .route(&RequestContext::new().with_routing_key(k))
                                    .ok()
                            })
                        })
                    }));
                }
                contenders.push(Contender::new("route_event", move |iters| {
                    per_thread(threads, iters, |iters, barrier| {
                        timed(iters, ctxs, barrier, |c| group.route_event(c).ok())
                    })
                }));
                contenders.push(Contender::new("pingora", move |iters| {
                    per_thread(threads, iters, |iters, barrier| {
                        if keyed {
                            timed(iters, key_bytes, barrier, |k| ketama.select(k, 256))
                        } else {
                            timed(iters, key_bytes, barrier, |k| rr.select(k, 256))
                        }
                    })
                }));
                let mut ran = false;
                for c in &mut contenders {
                    ran |= c.measure(&mut bench, "peers/criterion", &scenario, &variant);
                }
                if ran && harness::interleaving() {
                    harness::interleave(
                        "peers",
                        &scenario,
                        &variant,
                        Duration::from_millis(8),
                        contenders,
                    );
                }
            }
            bench.finish();
            drop(group);
            runtime.shutdown();
        }
    }
}

/// Checks that pingora routes at all before timing it, so a broken peer
/// fails loudly instead of timing `None`.
fn sanity() {
    let rr = pingora::<RoundRobin>(8);
    let ketama = pingora::<Consistent>(8);
    assert!(rr.select(b"", 256).is_some());
    let a = ketama.select(b"user-1", 256).unwrap();
    assert_eq!(ketama.select(b"user-1", 256).unwrap(), a);
}

fn main() {
    sanity();
    let mut c = harness::criterion();
    compare(&mut c);
    c.final_summary();
    for (suffix, what) in [
        ("", "undisturbed time (wall minus run-queue wait)"),
        ("/wall", "wall time"),
    ] {
        harness::print_ratios(
            &format!("peers{suffix}"),
            &format!("Peers: ns per route per thread, ours ÷ pingora-load-balancing, {what}"),
            &["router", "router+ctx", "route_event"],
            &["pingora"],
            &[],
        );
    }
    println!(
        "\nGoal (issue 10): ours ≥ 20× faster than pingora's select, i.e. ours ÷ pingora ≤ 0.05."
    );
}
