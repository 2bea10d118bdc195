//! Writer-path benchmarks: what a change costs, measured through the public
//! API (each call returns once its roster is published, so a change is
//! visible to every route when its call returns).
//!
//! `cargo bench --bench writer` (about 3 minutes on 2 cores;
//! `BENCH_LIFECYCLE_GROUPS=10000` shrinks the 100,000-group part). Parts:
//!
//! - `failover/{1,100,10000}_groups`: runtime `node_failed` of a node hosting
//!   one replica of every group (each replica moves to the one free node,
//!   keeping its identity), group `on_node_failure` and `on_node_recovery`
//!   of one group, and `scale_to` one up and one down, in a runtime holding
//!   that many groups of 3 round-robin replicas on 4 nodes; and a command
//!   that changes nothing (`on_node_recovery` of an unknown node), the cost
//!   of the hand-off to the writer thread alone. Every call is timed on its
//!   own: the table gives the median and the 99th percentile per call.
//! - `concurrent`: 1, 2, 4 and 8 threads, each alternately growing and
//!   shrinking its own group (`scale_to` 4 / 3) for a fixed time: changes
//!   applied per second, all threads together.
//! - `spawn`: spawning a group of 3 replicas (`RoundRobin`, `ConsistentHash`,
//!   `Adaptive`) and removing it again, each call timed.
//! - `table_build/{3,64,255}_members`: one group with as many nodes as
//!   members; member `k mod n`'s node reported failed (timed), then
//!   recovered (untimed). No node is free, so each failure publishes a roster
//!   whose healthy set is new (a different member is missing each time):
//!   `ConsistentHash` builds its table for it, `RoundRobin` has none, so
//!   the difference of the two is the table build time.
//! - memory (`memory.rs`, a counting global allocator): heap bytes retained
//!   per group and per roster version, and 100,000 groups of 3 spawned,
//!   routed once and removed in one runtime: time per spawn and per remove,
//!   bytes per live group, bytes left after removal.

#![allow(missing_docs)] // criterion's items and our helpers need no docs.

mod harness;
mod memory;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use harness::{fmt_ns, measure_n};
use replica_router::*;

const GROUPS: [u32; 3] = [1, 100, 10_000];
const SAMPLES: usize = 10;
/// Submitting threads of the concurrent part.
const SUBMITTERS: [usize; 4] = [1, 2, 4, 8];
/// Strategies of the spawn part (and of the memory table).
const SPAWNED: [Strategy; 3] = [
    Strategy::RoundRobin,
    Strategy::ConsistentHash,
    Strategy::Adaptive,
];

/// Every call timed on its own, by (part, operation), for the percentiles.
static CALLS: Mutex<BTreeMap<(String, String), Vec<Duration>>> = Mutex::new(BTreeMap::new());

/// Runs `f` and files its time under (`part`, `op`); returns its result and
/// its time.
fn time<T>(part: &str, op: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    let key = (part.to_owned(), op.to_owned());
    CALLS.lock().unwrap().entry(key).or_default().push(took);
    (out, took)
}

/// The `q`-quantile of the calls filed under (`part`, `op`).
fn quantile(part: &str, op: &str, q: f64) -> Option<f64> {
    let calls = CALLS.lock().unwrap();
    let mut times = calls.get(&(part.to_owned(), op.to_owned()))?.clone();
    Some(harness::quantile_ns(&mut times, q))
}

/// "median / p99" of (`part`, `op`), or "–".
fn median_p99(part: &str, op: &str) -> String {
    match (quantile(part, op, 0.5), quantile(part, op, 0.99)) {
        (Some(median), Some(p99)) => format!("{} / {}", fmt_ns(median), fmt_ns(p99)),
        _ => "–".to_owned(),
    }
}

/// A runtime with `groups` groups of 3 replicas, every group on nodes 0, 1
/// and 2, and node 3 free.
fn failover_runtime(groups: u32) -> (DaemonRuntime, Vec<ReplicaGroup>) {
    let runtime = harness::runtime(3);
    let start = Instant::now();
    let handles: Vec<ReplicaGroup> = (0..groups)
        .map(|n| harness::spawn(&runtime, n, 3, Strategy::RoundRobin))
        .collect();
    let spawned = start.elapsed();
    runtime.add_node(NodeInfo::new(3)).unwrap();
    println!(
        "set-up: {groups} groups of 3 spawned in {:.1} ms ({:.1} µs per group)",
        spawned.as_secs_f64() * 1e3,
        spawned.as_secs_f64() * 1e6 / f64::from(groups)
    );
    (runtime, handles)
}

/// The operations of the failover part, in table order.
const FAILOVER_OPS: [&str; 7] = [
    "round trip (no-op command)",
    "runtime node_failed",
    "runtime node_recovered",
    "group on_node_failure (replica moved)",
    "group on_node_recovery (nothing to re-mark)",
    "scale_to +1",
    "scale_to −1",
];

fn failover(c: &mut Criterion) {
    for groups in GROUPS {
        let (runtime, handles) = failover_runtime(groups);
        let part = format!("{groups} groups");
        let mut group = c.benchmark_group(format!("failover/{groups}_groups"));
        group.sampling_mode(SamplingMode::Flat);
        // Criterion's figure is the first call of each `step` (its partner
        // undoes it); every call of both is filed for the percentiles.
        let mut bench = |name: &str, mut step: Box<dyn FnMut() -> Duration + '_>| {
            measure_n(
                &mut group,
                SAMPLES,
                "writer",
                "failover",
                &part,
                name,
                |iters| (0..iters).map(|_| step()).sum(),
            );
        };

        // Node `failing` hosts a replica of every group and `free` none; a
        // failure moves them all to `free`, then the recovered node is the
        // free one.
        let (mut failing, mut free) = (0u64, 3u64);
        let [noop, failed, recovered, moved, unmoved, up, down] = FAILOVER_OPS;
        bench(
            failed,
            Box::new(|| {
                let (count, took) = time(&part, failed, || runtime.node_failed(failing));
                assert_eq!(count.unwrap(), groups as usize);
                time(&part, recovered, || {
                    runtime.node_recovered(failing).unwrap()
                });
                std::mem::swap(&mut failing, &mut free);
                took
            }),
        );
        // A command that changes nothing: the cost of handing a call to the
        // writer thread and waiting for its reply.
        let g = &handles[0];
        bench(
            noop,
            Box::new(|| time(&part, noop, || g.on_node_recovery(u64::MAX)).1),
        );
        // One group's member 0 reported failed: it moves to the group's one
        // free node. The report is then withdrawn (the member stays where it
        // moved, so nothing is re-marked), and the next round moves it back.
        bench(
            moved,
            Box::new(|| {
                let node = g.replicas()[0].node_id;
                let (indices, took) = time(&part, moved, || g.on_node_failure(node));
                assert_eq!(indices.unwrap(), vec![0]);
                time(&part, unmoved, || g.on_node_recovery(node));
                took
            }),
        );
        bench(
            up,
            Box::new(|| {
                let (grown, took) = time(&part, up, || g.scale_to(4));
                grown.unwrap();
                time(&part, down, || g.scale_to(3).unwrap());
                took
            }),
        );
        group.finish();
        drop(handles);
        runtime.shutdown();
    }
}

/// Changes applied per second, all threads together, while each of
/// `threads` threads grows and shrinks its own group (`scale_to` 4 / 3) for
/// `run_for`.
fn concurrent(threads: usize, run_for: Duration) -> f64 {
    let runtime = harness::runtime(4);
    let groups: Vec<ReplicaGroup> = (0..threads as u32)
        .map(|n| harness::spawn(&runtime, n, 3, Strategy::RoundRobin))
        .collect();
    let barrier = Barrier::new(threads + 1);
    let (stop, changes) = (AtomicBool::new(false), AtomicU64::new(0));
    let start = std::thread::scope(|scope| {
        for g in &groups {
            let (barrier, stop, changes) = (&barrier, &stop, &changes);
            scope.spawn(move || {
                barrier.wait();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    g.scale_to(4).unwrap();
                    g.scale_to(3).unwrap();
                    n += 2;
                }
                changes.fetch_add(n, Ordering::Relaxed);
            });
        }
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        start
    });
    let rate = changes.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    runtime.shutdown();
    rate
}

/// Spawns a group of 3 of each strategy in [`SPAWNED`] and removes it again,
/// `rounds` times (strategies taking turns), each call filed under `spawn`.
fn spawn_and_remove(rounds: u32) {
    let runtime = harness::runtime(3);
    for n in 0..rounds {
        for strategy in SPAWNED {
            let op = format!("{strategy:?}");
            let (g, _) = time("spawn", &op, || harness::spawn(&runtime, n, 3, strategy));
            time("remove", &op, || g.remove().unwrap());
        }
    }
    runtime.shutdown();
}

fn table_build(c: &mut Criterion) {
    for members in [3u8, 64, 255] {
        let mut group = c.benchmark_group(format!("table_build/{members}_members"));
        for strategy in [Strategy::RoundRobin, Strategy::ConsistentHash] {
            let runtime = harness::runtime(u64::from(members));
            let g = harness::spawn(&runtime, 0, members, strategy);
            let nodes: Vec<u64> = g.replicas().iter().map(|m| m.node_id).collect();
            let mut k = 0;
            let part = format!("{members} members");
            let failed = format!("{strategy:?} on_node_failure");
            let recovered = format!("{strategy:?} on_node_recovery");
            measure_n(
                &mut group,
                SAMPLES,
                "table",
                &part,
                "per change",
                &format!("{strategy:?}"),
                |iters| {
                    // Each timed failure removes a different member than the
                    // last one did, so its healthy set matches neither the
                    // current table nor the one the writer keeps from the
                    // previous publish: ConsistentHash builds a new table.
                    // The recovery (timed on its own, outside criterion's
                    // figure) restores the full set, whose table the writer
                    // kept.
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let node = nodes[k % nodes.len()];
                        k += 1;
                        let (marked, took) = time(&part, &failed, || g.on_node_failure(node));
                        assert_eq!(marked.unwrap(), Vec::<u8>::new());
                        total += took;
                        time(&part, &recovered, || g.on_node_recovery(node));
                    }
                    total
                },
            );
            drop(g);
            runtime.shutdown();
        }
        group.finish();
    }
}

/// Whether this is a full run (`cargo bench`), not `cargo test --benches`
/// running each part once at a small size.
fn full() -> bool {
    harness::interleaving()
}

fn main() {
    let memory = memory::per_group();
    let lifecycle_groups = match std::env::var("BENCH_LIFECYCLE_GROUPS") {
        Ok(n) => n.parse().expect("BENCH_LIFECYCLE_GROUPS: a group count"),
        Err(_) if full() => 100_000,
        Err(_) => 1_000,
    };
    let lifecycle = memory::lifecycle(lifecycle_groups);
    let mut c = harness::criterion().sample_size(SAMPLES);
    failover(&mut c);
    table_build(&mut c);
    c.final_summary();
    spawn_and_remove(if full() { 300 } else { 10 });
    let run_for = Duration::from_millis(if full() { 1_000 } else { 50 });
    let rates: Vec<(usize, f64)> = SUBMITTERS
        .iter()
        .map(|&t| (t, concurrent(t, run_for)))
        .collect();

    println!("\n### Writer latency per call (median / p99)\n");
    println!("| operation | 1 group | 100 groups | 10,000 groups |");
    println!("|---|---|---|---|");
    for op in FAILOVER_OPS {
        let cells: Vec<String> = GROUPS
            .iter()
            .map(|g| median_p99(&format!("{g} groups"), op))
            .collect();
        println!("| {op} | {} |", cells.join(" | "));
    }

    println!("\n### One group, no node free: a health change (median / p99 per call)\n");
    println!("| members | operation | RoundRobin | ConsistentHash | table build (medians) |");
    println!("|---|---|---|---|---|");
    for members in [3, 64, 255] {
        let part = format!("{members} members");
        for op in ["on_node_failure", "on_node_recovery"] {
            let of = |s: &str| format!("{s} {op}");
            let build = quantile(&part, &of("ConsistentHash"), 0.5)
                .zip(quantile(&part, &of("RoundRobin"), 0.5))
                .map_or("–".into(), |(ch, rr)| fmt_ns(ch - rr));
            println!(
                "| {members} | {op} | {} | {} | {build} |",
                median_p99(&part, &of("RoundRobin")),
                median_p99(&part, &of("ConsistentHash")),
            );
        }
    }

    println!("\n### Spawn and remove a group of 3 (median / p99 per call)\n");
    println!("| strategy | spawn | remove |");
    println!("|---|---|---|");
    for strategy in SPAWNED {
        let op = format!("{strategy:?}");
        println!(
            "| {op} | {} | {} |",
            median_p99("spawn", &op),
            median_p99("remove", &op)
        );
    }

    println!("\n### Concurrent changes: each thread grows and shrinks its own group\n");
    println!("| submitting threads | changes/s (all threads) |");
    println!("|---|---|");
    for (threads, rate) in &rates {
        println!("| {threads} | {rate:.0} |");
    }

    lifecycle.print();

    println!("\n### Memory\n");
    for line in memory {
        println!("{line}");
    }

    println!("\n### Goals\n");
    let goal = |what: &str, ns: Option<f64>, limit: f64| {
        if let Some(ns) = ns {
            let verdict = if ns <= limit { "met" } else { "MISSED" };
            println!(
                "- {what}: {} (goal ≤ {}): {verdict}",
                fmt_ns(ns),
                fmt_ns(limit)
            );
        }
    };
    for op in &FAILOVER_OPS[3..] {
        goal(
            &format!("{op}, 1 group, median"),
            quantile("1 groups", op, 0.5),
            15e3,
        );
    }
    for op in ["on_node_failure", "on_node_recovery"] {
        let p = quantile("3 members", &format!("RoundRobin {op}"), 0.5);
        goal(&format!("{op} (health change, 3 members), median"), p, 15e3);
    }
    for strategy in SPAWNED {
        let op = format!("{strategy:?}");
        goal(
            &format!("spawn {op} (3 replicas), median"),
            quantile("spawn", &op, 0.5),
            100e3,
        );
    }
    for (threads, rate) in &rates {
        let verdict = if *rate >= 50_000.0 { "met" } else { "MISSED" };
        println!("- {threads} submitting threads: {rate:.0} changes/s (goal ≥ 50,000): {verdict}");
    }
    goal(
        "node_failed on a node hosting replicas of 10,000 groups, median",
        quantile("10000 groups", "runtime node_failed", 0.5),
        50e6,
    );
}
