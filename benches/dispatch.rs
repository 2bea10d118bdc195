//! Dispatch benchmarks (issue 15): route + deliver, ours and the replaced
//! design's ("seed"), and the route alone as a user's loop writes it; round
//! robin, a no-op daemon, in one run.
//!
//! `cargo bench --bench dispatch` (about 2 minutes on 2 cores;
//! `BENCH_THREADS=1,2,4` sets the thread counts, default 1 and 2). Scenarios,
//! at 3 / 8 / 255 members on each thread count:
//!
//! - `dispatch`: `Router::dispatch`, `ReplicaGroup::dispatch`, `route_event`
//!   followed by `DaemonRuntime::deliver`, and `Router::route` followed by
//!   `deliver`, against the seed's route + deliver (`baselines::SeedRuntime`:
//!   group mutex, registry map behind an `RwLock` or in a `DashMap`, daemon
//!   mutex, `process`). Each thread dispatches with one context and keeps
//!   each result (`black_box`). `clock` is two clock reads
//!   (`Instant::now()` and `.elapsed()`), shown for scale: every delivery of
//!   ours times `process` with them.
//! - `route`: `Router::route`, `route_event` and the seed's route
//!   (`MutexGroup::route_event`, same `Result<u64, GroupError>`), each in the
//!   three loops of `harness::Consume`: the harness's own (`.ok()`, 1,024
//!   contexts through `black_box`), a user's plain loop with `.unwrap()`, and
//!   a user's loop keeping each `Result` (`black_box`). All nine run in one
//!   interleaved pass, so the loops compare with each other too.
//!
//! Criterion gives per-benchmark estimates; the tables printed at the end
//! (markdown) come from interleaved passes, as in `route.rs`.

#![allow(missing_docs)] // criterion's items and our helpers need no docs.

mod baselines;
mod harness;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use baselines::{SeedDaemon, SeedRuntime};
use criterion::Criterion;
use dashmap::DashMap;
use harness::{
    per_thread, result, thread_counts, threads_label, timed_calls, timed_routes, Consume, Contender,
};
use parking_lot::RwLock;
use replica_router::*;

const MEMBERS: [u8; 3] = [3, 8, 255];
/// Time per contender per round of an interleaved pass.
const ROUND: Duration = Duration::from_millis(8);

/// The route + deliver implementations.
const DISPATCH: [&str; 6] = [
    "Router::dispatch",
    "ReplicaGroup::dispatch",
    "route_event + deliver",
    "Router::route + deliver",
    "seed (RwLock<HashMap>)",
    "seed (DashMap)",
];
/// The route-only implementations.
const ROUTE: [&str; 3] = ["router", "route_event", "seed"];

/// One group (one node per member), and the seed's design over the same
/// origin hashes in both registry forms.
struct Subject {
    runtime: DaemonRuntime,
    group: ReplicaGroup,
    seed: SeedRuntime<RwLock<HashMap<u64, SeedDaemon>>>,
    seed_dashmap: SeedRuntime<DashMap<u64, SeedDaemon>>,
    ctxs: Vec<RequestContext>,
    event: Event,
}

impl Subject {
    fn new(members: u8) -> Subject {
        let runtime = harness::runtime(u64::from(members));
        let group = harness::spawn(&runtime, 0, members, Strategy::RoundRobin);
        let origins: Vec<u64> = group.replicas().iter().map(|m| m.origin_hash).collect();
        let noop = || Box::new(harness::Noop) as Box<dyn MeshDaemon>;
        Subject {
            seed: SeedRuntime::new(&origins, Strategy::RoundRobin, noop),
            seed_dashmap: SeedRuntime::new(&origins, Strategy::RoundRobin, noop),
            group,
            runtime,
            ctxs: harness::contexts(false),
            event: Event::new(&b"event"[..]),
        }
    }

    /// Time for `iters` dispatches of `DISPATCH[imp]` (or, past its end, two
    /// clock reads) on each of `threads` threads at once. Never inlined, so
    /// criterion and the interleaved pass time the same machine code.
    #[inline(never)]
    fn dispatch(&self, imp: usize, threads: usize, iters: u64) -> Duration {
        let (ctx, event) = (&self.ctxs[0], &self.event);
        per_thread(threads, iters, |iters, barrier| match imp {
            0 => {
                let mut router = self.group.router();
                timed_calls(iters, barrier, || router.dispatch(ctx, event))
            }
            1 => timed_calls(iters, barrier, || self.group.dispatch(ctx, event)),
            2 => timed_calls(iters, barrier, || {
                let origin = self.group.route_event(ctx).unwrap();
                self.runtime.deliver(origin, event)
            }),
            3 => {
                let mut router = self.group.router();
                timed_calls(iters, barrier, || {
                    let origin = router.route(ctx).unwrap();
                    self.runtime.deliver(origin, event)
                })
            }
            4 => timed_calls(iters, barrier, || self.seed.dispatch(ctx, event)),
            5 => timed_calls(iters, barrier, || self.seed_dashmap.dispatch(ctx, event)),
            _ => timed_calls(iters, barrier, || Instant::now().elapsed()),
        })
    }

    /// Time for `iters` routes of `ROUTE[imp]` consumed as `consume`, on
    /// each of `threads` threads at once.
    #[inline(never)]
    fn route(&self, imp: usize, consume: Consume, threads: usize, iters: u64) -> Duration {
        let ctxs = &self.ctxs;
        per_thread(threads, iters, |iters, barrier| match imp {
            0 => {
                let mut router = self.group.router();
                timed_routes(consume, iters, ctxs, barrier, |c| router.route(c))
            }
            1 => timed_routes(consume, iters, ctxs, barrier, |c| self.group.route_event(c)),
            _ => timed_routes(consume, iters, ctxs, barrier, |c| {
                self.seed.group.route_event(c.routing_key_hash())
            }),
        })
    }
}

fn dispatch(c: &mut Criterion, subject: &Subject, members: u8) {
    let scenario = format!("RoundRobin · {members} members");
    let mut group = c.benchmark_group(format!("dispatch/RoundRobin/{members}_members"));
    for threads in thread_counts() {
        let variant = threads_label(threads);
        let names = DISPATCH.iter().copied().chain(["clock"]);
        let mut contenders: Vec<Contender<'_>> = names
            .enumerate()
            .map(|(imp, name)| {
                Contender::new(name, move |iters| subject.dispatch(imp, threads, iters))
            })
            .collect();
        let mut ran = false;
        for contender in &mut contenders {
            ran |= contender.measure(&mut group, "dispatch/criterion", &scenario, &variant);
        }
        if ran && harness::interleaving() {
            harness::interleave("dispatch", &scenario, &variant, ROUND, contenders);
        }
    }
    group.finish();
}

fn route(c: &mut Criterion, subject: &Subject, members: u8) {
    let scenario = format!("RoundRobin · {members} members");
    let mut group = c.benchmark_group(format!("route/RoundRobin/{members}_members"));
    for threads in thread_counts() {
        let t = threads_label(threads);
        let mut contenders = Vec::new();
        for consume in Consume::ALL {
            for (imp, name) in ROUTE.iter().enumerate() {
                let contender_name = format!("{name} · {}", consume.name());
                contenders.push(Contender::new(contender_name, move |iters| {
                    subject.route(imp, consume, threads, iters)
                }));
            }
        }
        let mut ran = false;
        for contender in &mut contenders {
            ran |= contender.measure(&mut group, "route/criterion", &scenario, &t);
        }
        if !ran || !harness::interleaving() {
            continue;
        }
        harness::interleave("route/pass", &scenario, &t, ROUND, contenders);
        // One row per loop, so the tables give ours ÷ seed within a loop.
        for consume in Consume::ALL {
            let variant = format!("{t} · {}", consume.name());
            for name in ROUTE {
                let contender = format!("{name} · {}", consume.name());
                for (pass, table) in [("route/pass", "route"), ("route/pass/wall", "route/wall")] {
                    harness::copy_row((pass, &scenario, &t, &contender), (table, &variant, name));
                }
            }
        }
    }
    group.finish();
}

/// The targets of issue 15, against the undisturbed tables.
fn print_goals() {
    println!("\n### Goals (issue 15), round robin\n");
    let verdict = |ratio: f64, goal: f64| if ratio <= goal { "met" } else { "MISSED" };
    for members in MEMBERS {
        let scenario = format!("RoundRobin · {members} members");
        for threads in thread_counts() {
            let t = threads_label(threads);
            let ours = DISPATCH[0];
            for seed in &DISPATCH[4..] {
                let o = result("dispatch", &scenario, &t, ours);
                if let (Some(o), Some(s)) = (o, result("dispatch", &scenario, &t, seed)) {
                    let r = o / s;
                    println!(
                        "- {scenario}, {t}: {ours} ÷ {seed} = {r:.3} (goal ≤ 1.0, moonshot 0.6): {}",
                        verdict(r, 1.0)
                    );
                }
            }
            let goals: &[(&str, &str, f64)] = if threads == 1 {
                &[
                    ("router", "unwrap", 0.20),
                    ("router", "black_box", 0.30),
                    ("route_event", "unwrap", 0.35),
                    ("route_event", "black_box", 0.35),
                ]
            } else {
                &[("router", "unwrap", 0.1), ("route_event", "unwrap", 0.1)]
            };
            for &(imp, consume, goal) in goals {
                let variant = format!("{t} · {consume}");
                let ours = result("route", &scenario, &variant, imp);
                let seed = result("route", &scenario, &variant, "seed");
                if let (Some(o), Some(s)) = (ours, seed) {
                    let r = o / s;
                    println!(
                        "- {scenario}, {variant}: {imp} ÷ seed = {r:.3} (goal ≤ {goal}): {}",
                        verdict(r, goal)
                    );
                }
            }
        }
    }
    // "3 and 255 members equal": the time at 255 ÷ the time at 3.
    for threads in thread_counts() {
        let t = threads_label(threads);
        for (table, variant, imp) in [
            ("route", format!("{t} · unwrap"), "router"),
            ("route", format!("{t} · unwrap"), "route_event"),
            ("dispatch", t.clone(), "Router::dispatch"),
        ] {
            let at = |m: u8| result(table, &format!("RoundRobin · {m} members"), &variant, imp);
            if let (Some(small), Some(large)) = (at(3), at(255)) {
                println!(
                    "- {imp}, {variant}: 255 members ÷ 3 members = {:.2} (goal: equal)",
                    large / small
                );
            }
        }
    }
}

fn main() {
    let mut c = harness::criterion();
    for members in MEMBERS {
        let subject = Subject::new(members);
        dispatch(&mut c, &subject, members);
        route(&mut c, &subject, members);
        subject.runtime.shutdown();
    }
    c.final_summary();
    for (suffix, what) in [
        ("", "undisturbed time (wall minus run-queue wait)"),
        ("/wall", "wall time"),
    ] {
        harness::print_ratios(
            &format!("dispatch{suffix}"),
            &format!("Route + deliver: ns per event per thread, {what}"),
            &DISPATCH[..4],
            &DISPATCH[4..],
            &["clock"],
        );
        harness::print_ratios(
            &format!("route{suffix}"),
            &format!("Route only, by loop: ns per route per thread, {what}"),
            &ROUTE[..2],
            &ROUTE[2..],
            &[],
        );
    }
    print_goals();
}
