//! Route-path benchmarks: our `Router::route` and `route_event` side by side
//! with three baselines (see `baselines.rs`) in every scenario of one run:
//! the replaced design (state behind a `parking_lot::Mutex`, routing under
//! the lock), `RwLock<Arc<roster>>`, and `ArcSwap::load_full` per route.
//!
//! `cargo bench --bench route` (about 8 minutes on 2 cores). Scenarios:
//!
//! - `scaling`: round robin at 3 / 8 / 64 / 255 members on 1 and 2 threads
//!   (and every core where the machine has more than two);
//! - `strategy`: every `Strategy` at 3 / 8 / 64 / 255 members on one thread,
//!   and at 8 members on two; `ConsistentHash` and `Adaptive` also keyed
//!   (1,024 routing keys), where the replaced design's ring rebuild per call
//!   (`mutex_rebuild`) is measured too;
//! - `churn`: routing while a writer applies 1,000 changes per second (a
//!   member's node alternately failed and recovered, so every change
//!   publishes a roster), next to the same routing idle.
//!
//! Multi-threaded figures are the time per route on each thread while all
//! route at once (the slowest thread's time ÷ its routes). At the end the
//! run prints its tables of ratios (ours ÷ each baseline), in markdown.

#![allow(missing_docs)] // criterion's macros and our helpers need no docs.

mod baselines;
mod harness;

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baselines::{ArcSwapGroup, BaseRoster, Baseline, MutexGroup, RwLockGroup};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use harness::{measure, per_thread, result, thread_counts, threads_label, timed, Churn, Contender};
use replica_router::*;

const MEMBERS: [u8; 4] = [3, 8, 64, 255];
const OURS: [&str; 2] = ["router", "route_event"];
const BASELINES: [&str; 4] = ["mutex", "rwlock", "arcswap", "mutex_rebuild"];
/// Writer changes per second in the churn scenario.
const CHURN_RATE: u32 = 1_000;
/// Time per contender per round of an interleaved pass.
const ROUND: Duration = Duration::from_millis(8);
/// The same for the churn scenario, where each round starts a writer.
const CHURN_ROUND: Duration = Duration::from_millis(25);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Imp {
    Router,
    RouteEvent,
    Mutex,
    RwLock,
    ArcSwap,
}

impl Imp {
    const ALL: [Imp; 5] = [
        Imp::Router,
        Imp::RouteEvent,
        Imp::Mutex,
        Imp::RwLock,
        Imp::ArcSwap,
    ];

    fn name(self) -> &'static str {
        match self {
            Imp::Router => "router",
            Imp::RouteEvent => "route_event",
            Imp::Mutex => "mutex",
            Imp::RwLock => "rwlock",
            Imp::ArcSwap => "arcswap",
        }
    }
}

/// One group (one node per member) and the three baselines over the same
/// origin hashes.
struct Subject {
    runtime: DaemonRuntime,
    group: Arc<ReplicaGroup>,
    /// The node hosting member 0, which the churn fails and recovers.
    node0: u64,
    mutex: Arc<MutexGroup>,
    rwlock: Arc<RwLockGroup>,
    arcswap: Arc<ArcSwapGroup>,
}

impl Subject {
    fn new(members: u8, strategy: Strategy) -> Subject {
        let runtime = harness::runtime(u64::from(members));
        let group = Arc::new(harness::spawn(&runtime, 0, members, strategy));
        let replicas = group.replicas();
        let roster = || BaseRoster::new(replicas.iter().map(|m| m.origin_hash), strategy);
        Subject {
            node0: replicas[0].node_id,
            mutex: Arc::new(MutexGroup::new(roster())),
            rwlock: Arc::new(RwLockGroup::new(roster())),
            arcswap: Arc::new(ArcSwapGroup::new(roster())),
            group,
            runtime,
        }
    }

    /// Time for `iters` routes on each of `threads` threads at once.
    ///
    /// Never inlined, so the criterion runs and every interleaved contender
    /// execute the same machine code for an implementation: at a few
    /// nanoseconds per route, two copies of one loop at different addresses
    /// measured up to 1.7× apart.
    #[inline(never)]
    fn run(&self, imp: Imp, threads: usize, iters: u64, ctxs: &[RequestContext]) -> Duration {
        match imp {
            Imp::Router => per_thread(threads, iters, |iters, barrier| {
                let mut router = self.group.router();
                timed(iters, ctxs, barrier, |c| router.route(c).ok())
            }),
            Imp::RouteEvent => per_thread(threads, iters, |iters, barrier| {
                let group = &*self.group;
                timed(iters, ctxs, barrier, |c| group.route_event(c).ok())
            }),
            Imp::Mutex => run_baseline(&*self.mutex, threads, iters, ctxs),
            Imp::RwLock => run_baseline(&*self.rwlock, threads, iters, ctxs),
            Imp::ArcSwap => run_baseline(&*self.arcswap, threads, iters, ctxs),
        }
    }

    /// Starts a writer applying [`CHURN_RATE`] changes per second to `imp`'s
    /// state: for ours, member 0's node alternately failed and recovered
    /// through the runtime (no node is free, so the member turns unhealthy
    /// and healthy again and every change publishes a roster); for a
    /// baseline, member 0 alternately marked unhealthy and healthy.
    fn churn(&self, imp: Imp) -> Churn {
        fn flip<B: Baseline + 'static>(b: &Arc<B>) -> Churn {
            let b = Arc::clone(b);
            Churn::start(CHURN_RATE, move |k| b.set_healthy(0, k % 2 == 1))
        }
        match imp {
            Imp::Router | Imp::RouteEvent => {
                let (runtime, node) = (self.runtime.clone(), self.node0);
                Churn::start(CHURN_RATE, move |k| {
                    if k % 2 == 0 {
                        runtime.node_failed(node).unwrap();
                    } else {
                        runtime.node_recovered(node).unwrap();
                    }
                })
            }
            Imp::Mutex => flip(&self.mutex),
            Imp::RwLock => flip(&self.rwlock),
            Imp::ArcSwap => flip(&self.arcswap),
        }
    }

    /// Undoes a churn that stopped half-way through a flip.
    fn heal(&self) {
        self.runtime.node_recovered(self.node0).unwrap();
        self.mutex.set_healthy(0, true);
        self.rwlock.set_healthy(0, true);
        self.arcswap.set_healthy(0, true);
    }
}

fn run_baseline<B: Baseline>(
    b: &B,
    threads: usize,
    iters: u64,
    ctxs: &[RequestContext],
) -> Duration {
    per_thread(threads, iters, |iters, barrier| {
        let mut handle = b.handle();
        timed(iters, ctxs, barrier, |c| {
            b.route(&mut handle, c.routing_key_hash())
        })
    })
}

/// Benchmarks every implementation on `subject` with criterion (recorded
/// under `{table}/criterion`), then, when any ran, compares them in an
/// interleaved pass (recorded under `table`, which the printed tables read).
/// `extra` contenders join both.
#[allow(clippy::too_many_arguments)]
fn compare<'a>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    table: &str,
    scenario: &str,
    variant: &str,
    subject: &'a Subject,
    threads: usize,
    ctxs: &'a [RequestContext],
    mut extra: Vec<Contender<'a>>,
) {
    let criterion_table = format!("{table}/criterion");
    let mut ran = false;
    for imp in Imp::ALL {
        ran |= measure(
            group,
            &criterion_table,
            scenario,
            variant,
            imp.name(),
            |iters| subject.run(imp, threads, iters, ctxs),
        );
    }
    for c in &mut extra {
        ran |= c.measure(group, &criterion_table, scenario, variant);
    }
    if !ran || !harness::interleaving() {
        return;
    }
    let mut contenders: Vec<Contender<'a>> = Imp::ALL
        .iter()
        .map(|&imp| {
            Contender::new(imp.name(), move |iters| {
                subject.run(imp, threads, iters, ctxs)
            })
        })
        .collect();
    contenders.append(&mut extra);
    harness::interleave(table, scenario, variant, ROUND, contenders);
}

fn scaling(c: &mut Criterion) {
    let plain = harness::contexts(false);
    for members in MEMBERS {
        let subject = Subject::new(members, Strategy::RoundRobin);
        let scenario = format!("RoundRobin · {members} members");
        let mut group = c.benchmark_group(format!("scaling/RoundRobin/{members}_members"));
        for threads in thread_counts() {
            // The timing loop alone: a context's field read per iteration.
            let floor = Contender::new("floor", |iters| {
                per_thread(threads, iters, |iters, barrier| {
                    timed(iters, &plain, barrier, |c| c.routing_key_hash())
                })
            });
            compare(
                &mut group,
                "scaling",
                &scenario,
                &threads_label(threads),
                &subject,
                threads,
                &plain,
                vec![floor],
            );
        }
        group.finish();
    }
}

fn strategies(c: &mut Criterion) {
    let plain = harness::contexts(false);
    let keyed = harness::contexts(true);
    let keys: Vec<u64> = keyed
        .iter()
        .map(|c| c.routing_key_hash().unwrap())
        .collect();
    for strategy in Strategy::ALL {
        let hashes = matches!(strategy, Strategy::ConsistentHash | Strategy::Adaptive);
        for members in MEMBERS {
            let subject = Subject::new(members, strategy);
            let mut cases = vec![(format!("{strategy:?} · {members} members"), &plain, "")];
            if hashes {
                cases.push((
                    format!("{strategy:?} keyed · {members} members"),
                    &keyed,
                    "_keyed",
                ));
            }
            let threads: &[usize] = if members == 8 { &[1, 2] } else { &[1] };
            for (scenario, ctxs, suffix) in &cases {
                let mut group =
                    c.benchmark_group(format!("strategy/{strategy:?}{suffix}/{members}_members"));
                for &threads in threads {
                    let mut extra = Vec::new();
                    if *suffix == "_keyed" && strategy == Strategy::ConsistentHash && threads == 1 {
                        // The replaced design's consistent hashing: the ring
                        // rebuilt and sorted under the lock on every route.
                        let (mutex, keys) = (&subject.mutex, &keys);
                        extra.push(Contender::new("mutex_rebuild", move |iters| {
                            let start = Instant::now();
                            for i in 0..iters as usize {
                                black_box(mutex.route_rebuilding(keys[i & 1023]));
                            }
                            start.elapsed()
                        }));
                    }
                    compare(
                        &mut group,
                        "strategy",
                        scenario,
                        &threads_label(threads),
                        &subject,
                        threads,
                        ctxs,
                        extra,
                    );
                }
                group.finish();
            }
        }
    }
}

fn churn(c: &mut Criterion) {
    let cases = [
        (Strategy::RoundRobin, false),
        (Strategy::ConsistentHash, true),
    ];
    for (strategy, keyed) in cases {
        let ctxs = harness::contexts(keyed);
        for members in [8u8, 255] {
            let subject = Subject::new(members, strategy);
            let scenario = format!(
                "{strategy:?}{} · {members} members",
                if keyed { " keyed" } else { "" }
            );
            let mut group = c.benchmark_group(format!("churn/{strategy:?}/{members}_members"));
            for threads in [1, 2] {
                let idle = format!("{} · idle", threads_label(threads));
                let busy = format!("{} · {CHURN_RATE} changes/s", threads_label(threads));
                let criterion_table = "churn/criterion";
                let mut ran = false;
                for imp in Imp::ALL {
                    ran |= measure(
                        &mut group,
                        criterion_table,
                        &scenario,
                        &idle,
                        imp.name(),
                        |iters| subject.run(imp, threads, iters, &ctxs),
                    );
                    let churn = subject.churn(imp);
                    ran |= measure(
                        &mut group,
                        criterion_table,
                        &scenario,
                        &busy,
                        imp.name(),
                        |iters| subject.run(imp, threads, iters, &ctxs),
                    );
                    churn.stop();
                    subject.heal();
                }
                if !ran || !harness::interleaving() {
                    continue;
                }
                // Idle and churned rounds interleaved; a churned round starts
                // the writer, routes, and stops it.
                let applied: Vec<Cell<(u64, f64)>> =
                    Imp::ALL.iter().map(|_| Cell::new((0, 0.0))).collect();
                let (subject, ctxs, applied) = (&subject, &ctxs, &applied);
                let idle_contenders = Imp::ALL.iter().map(|&imp| {
                    Contender::new(imp.name(), move |iters| {
                        subject.run(imp, threads, iters, ctxs)
                    })
                });
                let busy_contenders = Imp::ALL.iter().enumerate().map(|(i, &imp)| {
                    Contender::new(format!("{} (churn)", imp.name()), move |iters| {
                        let churn = subject.churn(imp);
                        let d = subject.run(imp, threads, iters, ctxs);
                        let (changes, secs) = churn.stop();
                        subject.heal();
                        let (c, s) = applied[i].get();
                        applied[i].set((c + changes, s + secs));
                        d
                    })
                });
                harness::interleave(
                    "churn/pass",
                    &scenario,
                    &threads_label(threads),
                    CHURN_ROUND,
                    idle_contenders.chain(busy_contenders).collect(),
                );
                // Split the pass into the idle and churned rows the tables read.
                let t = threads_label(threads);
                for (i, imp) in Imp::ALL.iter().enumerate() {
                    let name = imp.name();
                    let (changes, secs) = applied[i].get();
                    let rate = format!("{:.0}/s", changes as f64 / secs);
                    for (pass, table) in
                        [("churn/pass", "churn"), ("churn/pass/wall", "churn/wall")]
                    {
                        harness::copy_row((pass, &scenario, &t, name), (table, &idle, name));
                        let churned = format!("{name} (churn)");
                        if harness::copy_row((pass, &scenario, &t, &churned), (table, &busy, name))
                        {
                            harness::note(table, &scenario, &busy, name, rate.clone());
                        }
                    }
                }
            }
            group.finish();
        }
    }
}

/// Prints churned ÷ idle per implementation, and the goals of issue 10.
fn print_summary() {
    for (table, what) in [("churn", "undisturbed time"), ("churn/wall", "wall time")] {
        println!("\n### Under churn ({what}): time per route with {CHURN_RATE} changes/s ÷ idle\n");
        println!("| scenario | threads | router | route_event | mutex | rwlock | arcswap |");
        println!("|---|---|---|---|---|---|---|");
        for (strategy, keyed) in [("RoundRobin", ""), ("ConsistentHash", " keyed")] {
            for members in [8, 255] {
                let scenario = format!("{strategy}{keyed} · {members} members");
                for threads in [1, 2] {
                    let t = threads_label(threads);
                    let mut line = format!("| {scenario} | {t} |");
                    for imp in Imp::ALL {
                        let idle = result(table, &scenario, &format!("{t} · idle"), imp.name());
                        let busy = result(
                            table,
                            &scenario,
                            &format!("{t} · {CHURN_RATE} changes/s"),
                            imp.name(),
                        );
                        let cell = match (idle, busy) {
                            (Some(i), Some(b)) => format!("{:.2}", b / i),
                            _ => "–".into(),
                        };
                        line.push_str(&format!(" {cell} |"));
                    }
                    println!("{line}");
                }
            }
        }
    }

    let goals = [
        ("router", "1 thread", 0.2),
        ("router", "2 threads", 0.1),
        ("route_event", "1 thread", 0.5),
        ("route_event", "2 threads", 0.2),
    ];
    for (table, what) in [
        ("scaling", "undisturbed time"),
        ("scaling/wall", "wall time"),
    ] {
        println!("\n### Goals (issue 10), round robin, `{table}` ({what})\n");
        for members in MEMBERS {
            let scenario = format!("RoundRobin · {members} members");
            for (imp, threads, goal) in goals {
                let ours = result(table, &scenario, threads, imp);
                let mutex = result(table, &scenario, threads, "mutex");
                if let (Some(o), Some(m)) = (ours, mutex) {
                    let ratio = o / m;
                    let verdict = if ratio <= goal { "met" } else { "MISSED" };
                    println!(
                        "- {scenario}, {threads}: {imp} ÷ mutex = {ratio:.3} (goal ≤ {goal}): {verdict}"
                    );
                }
            }
        }
    }
}

fn main() {
    let mut c = harness::criterion();
    scaling(&mut c);
    strategies(&mut c);
    churn(&mut c);
    c.final_summary();
    for (suffix, what) in [
        ("", "undisturbed time (wall minus run-queue wait)"),
        ("/wall", "wall time"),
    ] {
        harness::print_ratios(
            &format!("scaling{suffix}"),
            &format!("Scaling: round robin, ns per route per thread, {what}"),
            &OURS,
            &BASELINES,
            &["floor"],
        );
        harness::print_ratios(
            &format!("strategy{suffix}"),
            &format!("Strategies: ns per route per thread, {what}"),
            &OURS,
            &BASELINES,
            &[],
        );
        harness::print_ratios(
            &format!("churn{suffix}"),
            &format!(
                "Churn: ns per route per thread, idle and with a writer, {what} (notes: changes/s reached)"
            ),
            &OURS,
            &BASELINES,
            &[],
        );
    }
    print_summary();
}
