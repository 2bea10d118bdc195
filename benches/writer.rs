//! Writer-path benchmarks: what a change costs, measured through the public
//! API (each call returns once its roster is published).
//!
//! `cargo bench --bench writer`. Three parts:
//!
//! - `failover/{1,100,10000}_groups`: runtime `node_failed` of a node hosting
//!   one replica of every group (each replica moves to the one free node,
//!   keeping its identity), group `on_node_failure` of one group, and
//!   `scale_to` one up and one down, in a runtime holding that many groups of
//!   3 round-robin replicas on 4 nodes; and a command that changes nothing
//!   (`on_node_recovery` of an unknown node), the cost of the hand-off to the
//!   writer thread alone.
//! - `table_build/{3,64,255}_members`: one group with as many nodes as
//!   members; member `k mod n`'s node reported failed (timed), then
//!   recovered (untimed). No node is free, so each failure publishes a roster
//!   whose healthy set is new (a different member is missing each time):
//!   `ConsistentHash` builds a Maglev table for it, `RoundRobin` has none, so
//!   the difference of the two is the table build time.
//! - memory: a counting global allocator measures the heap bytes retained
//!   per group (everything: hosts, stats, identities, writer state, registry
//!   entries, roster), and per roster version (a `Router` pins each group's
//!   roster, a node failure publishes a new one, and the growth is divided by
//!   the number of groups).
//!
//! The counting allocator adds one relaxed atomic add per allocation to the
//! timed parts too.

#![allow(missing_docs)] // criterion's items and our helpers need no docs.

mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use harness::{fmt_ns, measure_n, result};
use replica_router::*;

/// Counts the bytes currently allocated, over every thread.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is a side effect
// that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const GROUPS: [u32; 3] = [1, 100, 10_000];
const SAMPLES: usize = 10;

fn writer_criterion() -> Criterion {
    harness::criterion().sample_size(SAMPLES)
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

/// Median `node_recovered` (the untimed partner of each timed `node_failed`), by group count.
static RECOVERED: Mutex<Vec<(u32, f64)>> = Mutex::new(Vec::new());

fn failover(c: &mut Criterion) {
    for groups in GROUPS {
        let (runtime, handles) = failover_runtime(groups);
        let variant = format!("{groups} groups");
        let mut group = c.benchmark_group(format!("failover/{groups}_groups"));
        group.sampling_mode(SamplingMode::Flat);

        // Node `failing` hosts a replica of every group and `free` none; a
        // failure moves them all to `free`, then the recovered node is the
        // free one.
        let (mut failing, mut free) = (0u64, 3u64);
        let mut recovered = Vec::new();
        let ran = measure_n(
            &mut group,
            SAMPLES,
            "writer",
            "failover",
            &variant,
            "runtime node_failed",
            |iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let moved = runtime.node_failed(failing).unwrap();
                    total += start.elapsed();
                    assert_eq!(moved, groups as usize);
                    let start = Instant::now();
                    runtime.node_recovered(failing).unwrap();
                    recovered.push(start.elapsed());
                    std::mem::swap(&mut failing, &mut free);
                }
                total
            },
        );
        if ran {
            recovered.sort();
            let median = recovered[recovered.len() / 2].as_nanos() as f64;
            RECOVERED.lock().unwrap().push((groups, median));
        }

        // One group's member 0 reported failed: it moves to the group's one
        // free node. The report is then withdrawn, so the next round can
        // move it back.
        let g = &handles[0];
        // A command that changes nothing: the cost of handing a call to the
        // writer thread and waiting for its reply.
        measure_n(
            &mut group,
            SAMPLES,
            "writer",
            "failover",
            &variant,
            "round trip (no-op command)",
            |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    g.on_node_recovery(u64::MAX);
                }
                start.elapsed()
            },
        );
        measure_n(
            &mut group,
            SAMPLES,
            "writer",
            "failover",
            &variant,
            "group on_node_failure",
            |iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let node = g.replicas()[0].node_id;
                    let start = Instant::now();
                    let moved = g.on_node_failure(node).unwrap();
                    total += start.elapsed();
                    assert_eq!(moved, vec![0]);
                    g.on_node_recovery(node);
                }
                total
            },
        );

        for (name, timed_up) in [("scale_to +1", true), ("scale_to −1", false)] {
            measure_n(
                &mut group,
                SAMPLES,
                "writer",
                "failover",
                &variant,
                name,
                |iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        g.scale_to(4).unwrap();
                        if timed_up {
                            total += start.elapsed();
                        }
                        let start = Instant::now();
                        g.scale_to(3).unwrap();
                        if !timed_up {
                            total += start.elapsed();
                        }
                    }
                    total
                },
            );
        }
        group.finish();
        drop(handles);
        runtime.shutdown();
    }
}

fn table_build(c: &mut Criterion) {
    for members in [3u8, 64, 255] {
        let mut group = c.benchmark_group(format!("table_build/{members}_members"));
        for strategy in [Strategy::RoundRobin, Strategy::ConsistentHash] {
            let runtime = harness::runtime(u64::from(members));
            let g = harness::spawn(&runtime, 0, members, strategy);
            let nodes: Vec<u64> = g.replicas().iter().map(|m| m.node_id).collect();
            let mut k = 0;
            measure_n(
                &mut group,
                SAMPLES,
                "table",
                &format!("{members} members"),
                "per change",
                &format!("{strategy:?}"),
                |iters| {
                    // Each timed failure removes a different member than the
                    // last one did, so its healthy set matches neither the
                    // current table nor the one the writer keeps from the
                    // previous publish: ConsistentHash builds a new table.
                    // The untimed recovery restores the full set, whose
                    // table the writer kept.
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let node = nodes[k % nodes.len()];
                        k += 1;
                        let start = Instant::now();
                        g.on_node_failure(node).unwrap();
                        total += start.elapsed();
                        g.on_node_recovery(node);
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

/// Heap bytes retained per group and per roster version.
fn memory() -> Vec<String> {
    let mut lines = vec![
        "| members | strategy | groups | bytes per group (all) | bytes per roster version |"
            .to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    for (members, groups) in [(3u8, 1000u32), (255, 20)] {
        for strategy in [Strategy::RoundRobin, Strategy::ConsistentHash] {
            let runtime = harness::runtime(u64::from(members));
            let before = live();
            let handles: Vec<ReplicaGroup> = (0..groups)
                .map(|n| harness::spawn(&runtime, n, members, strategy))
                .collect();
            let per_group = (live() - before) as f64 / f64::from(groups);

            // Pin every group's roster, then publish a new one in each.
            let mut routers: Vec<Router> = handles.iter().map(|g| g.router()).collect();
            for r in &mut routers {
                r.route(&RequestContext::new()).unwrap();
            }
            let before = live();
            runtime
                .node_failed(handles[0].replicas()[0].node_id)
                .unwrap();
            let per_roster = (live() - before) as f64 / f64::from(groups);
            lines.push(format!(
                "| {members} | {strategy:?} | {groups} | {per_group:.0} | {per_roster:.0} |"
            ));
            drop(routers);
            drop(handles);
            runtime.shutdown();
        }
    }
    lines
}

fn main() {
    let memory = memory();
    let mut c = writer_criterion();
    failover(&mut c);
    table_build(&mut c);
    c.final_summary();

    println!("\n### Writer latency (median per call)\n");
    println!("| operation | 1 group | 100 groups | 10,000 groups |");
    println!("|---|---|---|---|");
    for op in [
        "round trip (no-op command)",
        "runtime node_failed",
        "group on_node_failure",
        "scale_to +1",
        "scale_to −1",
    ] {
        let cells: Vec<String> = GROUPS
            .iter()
            .map(|g| {
                result("writer", "failover", &format!("{g} groups"), op).map_or("–".into(), fmt_ns)
            })
            .collect();
        println!("| {op} | {} |", cells.join(" | "));
    }
    let recovered = RECOVERED.lock().unwrap();
    if !recovered.is_empty() {
        let cells: Vec<String> = GROUPS
            .iter()
            .map(|g| {
                recovered
                    .iter()
                    .find(|(n, _)| n == g)
                    .map_or("–".into(), |(_, ns)| fmt_ns(*ns))
            })
            .collect();
        println!(
            "| runtime node_recovered (untimed partner) | {} |",
            cells.join(" | ")
        );
    }

    println!("\n### Maglev table build (ConsistentHash − RoundRobin, per change)\n");
    println!("| members | RoundRobin | ConsistentHash | table build |");
    println!("|---|---|---|---|");
    for members in [3, 64, 255] {
        let scenario = format!("{members} members");
        let rr = result("table", &scenario, "per change", "RoundRobin");
        let ch = result("table", &scenario, "per change", "ConsistentHash");
        if let (Some(rr), Some(ch)) = (rr, ch) {
            println!(
                "| {members} | {} | {} | {} |",
                fmt_ns(rr),
                fmt_ns(ch),
                fmt_ns(ch - rr)
            );
        }
    }

    println!("\n### Memory\n");
    for line in memory {
        println!("{line}");
    }

    if let Some(ns) = result("writer", "failover", "10000 groups", "runtime node_failed") {
        let verdict = if ns < 50e6 { "met" } else { "MISSED" };
        println!(
            "\nGoal: node_failed on a node hosting replicas of 10,000 groups < 50 ms: {} ({verdict})",
            fmt_ns(ns)
        );
    }
}
