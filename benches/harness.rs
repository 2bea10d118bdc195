//! Shared by the benches: a no-op daemon, group set-up, multi-threaded
//! timing, a paced writer ("churn") thread, and the ratio tables printed at
//! the end of a run.
//!
//! Every benchmark is timed with `iter_custom`, and the harness keeps the
//! per-iteration time of each of its measurement samples (the last
//! `SAMPLE_SIZE` calls; the earlier ones are criterion's warm-up). The tables
//! report the median sample, and ratios are taken between benchmarks of the
//! same run, so a busy machine shifts both sides.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use replica_router::*;

/// Samples per benchmark.
pub(crate) const SAMPLE_SIZE: usize = 15;

/// The criterion settings every bench uses: short, so a full run stays in
/// minutes on two cores.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_millis(150))
        .measurement_time(Duration::from_millis(400))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args()
}

/// A daemon that does nothing; routing never calls it.
pub(crate) struct Noop;

impl MeshDaemon for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn process(&mut self, _: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> {
        Ok(Vec::new())
    }
}

/// A started runtime over nodes `0..nodes` with the `noop` kind registered.
pub(crate) fn runtime(nodes: u64) -> DaemonRuntime {
    let runtime = DaemonRuntime::new((0..nodes).map(NodeInfo::new));
    runtime.register_factory("noop", || Box::new(Noop)).unwrap();
    runtime.start().unwrap();
    runtime
}

/// Group `n` of a runtime: `members` replicas with a seed derived from `n`.
pub(crate) fn spawn(
    runtime: &DaemonRuntime,
    n: u32,
    members: u8,
    strategy: Strategy,
) -> ReplicaGroup {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[4] = members;
    seed[5] = 0xbe;
    let config = ReplicaGroupConfig {
        replica_count: members,
        group_seed: seed,
        lb_strategy: strategy,
        host_config: DaemonHostConfig::default(),
    };
    ReplicaGroup::spawn(runtime, "noop", config).unwrap()
}

/// The 1,024 keys every keyed benchmark cycles through, so a hash table is
/// read at many places rather than one that stays in L1.
pub(crate) fn keys() -> Vec<String> {
    (0..1024).map(|k| format!("user-{k}")).collect()
}

/// Contexts for the keys (`keyed`), or 1,024 empty ones.
pub(crate) fn contexts(keyed: bool) -> Vec<RequestContext> {
    if keyed {
        keys()
            .iter()
            .map(|k| RequestContext::new().with_routing_key(k))
            .collect()
    } else {
        vec![RequestContext::new(); 1024]
    }
}

/// The thread counts of the multi-threaded scenarios: `BENCH_THREADS` (a
/// comma-separated list, e.g. `BENCH_THREADS=1,2,4,8,16` for a core-scaling
/// curve in one command), else 1 and 2 threads, and every core when the
/// machine has more.
pub(crate) fn thread_counts() -> Vec<usize> {
    if let Ok(list) = std::env::var("BENCH_THREADS") {
        let counts: Vec<usize> = list
            .split(',')
            .map(|t| match t.trim().parse() {
                Ok(n) if n > 0 => n,
                _ => {
                    panic!("BENCH_THREADS: `{t}` is not a thread count (e.g. BENCH_THREADS=1,2,4)")
                }
            })
            .collect();
        assert!(!counts.is_empty(), "BENCH_THREADS is empty");
        return counts;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2];
    if cores > 2 {
        counts.push(cores);
    }
    counts
}

pub(crate) fn threads_label(threads: usize) -> String {
    if threads == 1 {
        "1 thread".to_owned()
    } else {
        format!("{threads} threads")
    }
}

/// Runs `body` on `threads` threads at once (on the caller's thread when
/// one) and returns the slowest thread's time: `iters` routes per thread
/// take this long while all of them route.
///
/// `body` builds its per-thread state, then waits on the barrier, then times
/// its loop (see [`timed`]).
pub(crate) fn per_thread(
    threads: usize,
    iters: u64,
    body: impl Fn(u64, &Barrier) -> Duration + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    if threads == 1 {
        return body(iters, &barrier);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| body(iters, &barrier)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

/// One untimed call (fills this thread's caches), the barrier, then `iters`
/// timed calls cycling through `inputs` (its length a power of two), each
/// input and each result passed through `black_box`.
///
/// Returns the wall time, and also notes (see [`take_undisturbed`]) the wall
/// time minus the time this thread sat runnable waiting for a CPU.
#[inline(always)]
pub(crate) fn timed<I, T>(
    iters: u64,
    inputs: &[I],
    barrier: &Barrier,
    mut f: impl FnMut(&I) -> T,
) -> Duration {
    debug_assert!(inputs.len().is_power_of_two());
    black_box(f(&inputs[0]));
    let mask = inputs.len() - 1;
    timed_loop(barrier, || {
        for i in 0..iters as usize {
            black_box(f(black_box(&inputs[i & mask])));
        }
    })
}

/// Waits on the barrier, then times `body` (a whole loop), noting its
/// undisturbed time (see [`take_undisturbed`]); returns the wall time.
#[inline(always)]
pub(crate) fn timed_loop(barrier: &Barrier, body: impl FnOnce()) -> Duration {
    barrier.wait();
    let waited = run_queue_wait_ns();
    let start = Instant::now();
    body();
    let end = Instant::now();
    let wall = end - start;
    let waited_after = run_queue_wait_ns();
    SPANS.lock().unwrap().push((start, end));
    let undisturbed = (wall.as_nanos() as u64)
        .saturating_sub(waited_after.saturating_sub(waited))
        .max(1);
    let waited = waited_after.saturating_sub(waited);
    UNDISTURBED.fetch_max(undisturbed, Ordering::Relaxed);
    WAITED_PERMILLE.fetch_max(
        waited * 1000 / (wall.as_nanos() as u64).max(1),
        Ordering::Relaxed,
    );
    wall
}

/// How a timed route loop consumes each result: the harness's own way, or
/// as a user's loop does. The route benches' figures before issue 15 are
/// [`Consume::Harness`]; a user's loop measured slower (see BENCHMARKS.md,
/// "What a user's loop sees").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Consume {
    /// [`timed`]: 1,024 contexts in turn, each through `black_box`; the
    /// result turned into an `Option<u64>` (`.ok()`) and that through
    /// `black_box`.
    Harness,
    /// A user's plain loop: one context, `.unwrap()` on every result, the
    /// origin hashes summed (the sum goes through `black_box` once, after the
    /// loop).
    Unwrap,
    /// A user's loop that keeps each result: one context, the whole
    /// `Result` passed through `black_box` (so through memory).
    BlackBox,
}

impl Consume {
    pub(crate) const ALL: [Consume; 3] = [Consume::Harness, Consume::Unwrap, Consume::BlackBox];

    /// A short name, for benchmark ids and table rows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Consume::Harness => "harness",
            Consume::Unwrap => "unwrap",
            Consume::BlackBox => "black_box",
        }
    }
}

/// Times `iters` calls of `route`, consumed as `consume` says; `ctxs[0]` is
/// the one context of the user loops. One untimed call first, as [`timed`].
#[inline(always)]
pub(crate) fn timed_routes<E: std::fmt::Debug>(
    consume: Consume,
    iters: u64,
    ctxs: &[RequestContext],
    barrier: &Barrier,
    mut route: impl FnMut(&RequestContext) -> Result<u64, E>,
) -> Duration {
    let ctx = &ctxs[0];
    match consume {
        Consume::Harness => timed(iters, ctxs, barrier, |c| route(c).ok()),
        Consume::Unwrap => {
            black_box(route(ctx).ok());
            timed_loop(barrier, || {
                let mut sum = 0u64;
                for _ in 0..iters {
                    sum = sum.wrapping_add(route(ctx).unwrap());
                }
                black_box(sum);
            })
        }
        Consume::BlackBox => timed_calls(iters, barrier, || route(ctx)),
    }
}

/// One untimed call, the barrier, then `iters` timed calls of `f`, each
/// result passed through `black_box`: a user's loop that keeps every result.
#[inline(always)]
pub(crate) fn timed_calls<T>(iters: u64, barrier: &Barrier, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    timed_loop(barrier, || {
        for _ in 0..iters {
            black_box(f());
        }
    })
}

/// The slowest thread's undisturbed time (ns) of the timed loops since the
/// last [`take_undisturbed`]; 0 when none ran.
static UNDISTURBED: AtomicU64 = AtomicU64::new(0);

/// The largest share (‰ of its wall time) any timed loop's thread spent
/// waiting for a CPU, since the last [`take_undisturbed`].
static WAITED_PERMILLE: AtomicU64 = AtomicU64::new(0);

/// When each timed loop started and ended, since the last [`take_undisturbed`].
static SPANS: Mutex<Vec<(Instant, Instant)>> = Mutex::new(Vec::new());

/// The undisturbed time noted by the [`timed`] loops since the last call: the
/// slowest thread's wall time minus the time it waited, runnable, for a CPU
/// (`/proc/thread-self/schedstat`). That wait is what other processes (or an
/// oversubscribed machine) add; time a thread spends blocked, e.g. parked on
/// a contended mutex, is not subtracted. `None` when no loop ran.
pub(crate) fn take_undisturbed() -> Option<Undisturbed> {
    let waited_permille = WAITED_PERMILLE.swap(0, Ordering::Relaxed);
    let spans = std::mem::take(&mut *SPANS.lock().unwrap());
    // The share of the whole round during which every thread was in its loop.
    let overlap = match (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.0).max(),
        spans.iter().map(|s| s.1).min(),
        spans.iter().map(|s| s.1).max(),
    ) {
        (Some(first_start), Some(last_start), Some(first_end), Some(last_end)) => {
            let all = (last_end - first_start).as_secs_f64();
            let together = first_end
                .saturating_duration_since(last_start)
                .as_secs_f64();
            if all > 0.0 {
                together / all
            } else {
                1.0
            }
        }
        _ => 1.0,
    };
    match UNDISTURBED.swap(0, Ordering::Relaxed) {
        0 => None,
        ns => Some(Undisturbed {
            time: Duration::from_nanos(ns),
            waited_permille,
            overlap,
        }),
    }
}

/// What [`take_undisturbed`] reports.
pub(crate) struct Undisturbed {
    /// The slowest thread's wall time minus its run-queue wait.
    pub(crate) time: Duration,
    /// The largest share (‰) of its wall time a thread waited for a CPU.
    pub(crate) waited_permille: u64,
    /// The share of the round during which all threads were in their loops
    /// (1 for one thread).
    pub(crate) overlap: f64,
}

/// Nanoseconds this thread has waited, runnable, for a CPU (0 where the
/// kernel does not report it). Updated whenever the thread gets a CPU back,
/// so it is exact for waits that have ended.
fn run_queue_wait_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// One measured benchmark, as the tables read it.
#[derive(Clone, Debug)]
struct Row {
    scenario: String,
    variant: String,
    imp: String,
    /// Median nanoseconds per iteration (per route, per thread).
    ns: f64,
    /// Free-form note (e.g. the change rate a churn thread reached).
    note: String,
    /// Clean rounds, for a result of an interleaved pass (see [`interleave`]).
    clean: Option<usize>,
}

static ROWS: Mutex<Vec<(String, Row)>> = Mutex::new(Vec::new());

/// Benchmarks `run` (given an iteration count, returns their total time) as
/// `{imp}/{variant}` in criterion's group `group`, and records its median
/// sample under `table`. Whether it ran (criterion's filter may skip it).
pub(crate) fn measure(
    group: &mut BenchmarkGroup<'_, WallTime>,
    table: &str,
    scenario: &str,
    variant: &str,
    imp: &str,
    run: impl FnMut(u64) -> Duration,
) -> bool {
    measure_n(group, SAMPLE_SIZE, table, scenario, variant, imp, run)
}

/// [`measure`] for a group configured with `sample_size` samples.
pub(crate) fn measure_n(
    group: &mut BenchmarkGroup<'_, WallTime>,
    sample_size: usize,
    table: &str,
    scenario: &str,
    variant: &str,
    imp: &str,
    mut run: impl FnMut(u64) -> Duration,
) -> bool {
    let mut samples: Vec<f64> = Vec::new();
    group.bench_function(format!("{imp}/{variant}"), |b| {
        b.iter_custom(|iters| {
            let d = run(iters);
            samples.push(d.as_nanos() as f64 / iters.max(1) as f64);
            d
        })
    });
    if samples.is_empty() {
        return false;
    }
    let mut last = samples[samples.len().saturating_sub(sample_size)..].to_vec();
    last.sort_by(f64::total_cmp);
    let row = Row {
        scenario: scenario.to_owned(),
        variant: variant.to_owned(),
        imp: imp.to_owned(),
        ns: last[last.len() / 2],
        note: String::new(),
        clean: None,
    };
    ROWS.lock().unwrap().push((table.to_owned(), row));
    true
}

/// Attaches `note` to the last row recorded.
pub(crate) fn note_last(note: String) {
    if let Some((_, row)) = ROWS.lock().unwrap().last_mut() {
        row.note = note;
    }
}

/// The median ns recorded for one benchmark, if it ran.
pub(crate) fn result(table: &str, scenario: &str, variant: &str, imp: &str) -> Option<f64> {
    ROWS.lock()
        .unwrap()
        .iter()
        .find(|(t, r)| t == table && r.scenario == scenario && r.variant == variant && r.imp == imp)
        .map(|(_, r)| r.ns)
}

pub(crate) fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

/// The `q`-quantile (0 to 1) of `times`, in ns; sorts them.
pub(crate) fn quantile_ns(times: &mut [Duration], q: f64) -> f64 {
    times.sort();
    let at = ((times.len() - 1) as f64 * q).round() as usize;
    times[at].as_nanos() as f64
}

/// Prints `table` as markdown: per scenario and variant, the time of each
/// implementation (`ours`, `others`, then `shown`), then `ours ÷ other` for
/// each of `ours` against each of `others` (implementations that did not run
/// are left out).
pub(crate) fn print_ratios(
    table: &str,
    title: &str,
    ours: &[&str],
    others: &[&str],
    shown: &[&str],
) {
    let rows: Vec<Row> = ROWS
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == table)
        .map(|(_, r)| r.clone())
        .collect();
    if rows.is_empty() {
        return;
    }
    let present = |imp: &&str| rows.iter().any(|r| r.imp == *imp);
    let ours: Vec<&str> = ours.iter().copied().filter(present).collect();
    let others: Vec<&str> = others.iter().copied().filter(present).collect();
    let shown: Vec<&str> = shown.iter().copied().filter(present).collect();
    let has_notes = rows.iter().any(|r| !r.note.is_empty());
    let has_clean = rows.iter().any(|r| r.clean.is_some());
    // Scenario order as run; variants in order within each.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut cells: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    for r in rows {
        let key = (r.scenario.clone(), r.variant.clone());
        if !order.contains(&key) {
            order.push(key);
        }
        cells.insert((r.scenario.clone(), r.variant.clone(), r.imp.clone()), r);
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n### {title}\n");
    let mut head = "| scenario | variant |".to_owned();
    for imp in ours.iter().chain(&others).chain(&shown) {
        let _ = write!(head, " {imp} |");
    }
    for o in &ours {
        for b in &others {
            let _ = write!(head, " {o} ÷ {b} |");
        }
    }
    if has_clean {
        head.push_str(" clean rounds |");
    }
    if has_notes {
        head.push_str(" notes |");
    }
    let columns = head.matches('|').count() - 1;
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "|{}", "---|".repeat(columns));
    for (scenario, variant) in order {
        let get = |imp: &str| cells.get(&(scenario.clone(), variant.clone(), imp.to_owned()));
        let mut line = format!("| {scenario} | {variant} |");
        for imp in ours.iter().chain(&others).chain(&shown) {
            let cell = get(imp).map_or("–".to_owned(), |r| fmt_ns(r.ns));
            let _ = write!(line, " {cell} |");
        }
        for o in &ours {
            for b in &others {
                let cell = match (get(o), get(b)) {
                    (Some(o), Some(b)) => format!("{:.3}", o.ns / b.ns),
                    _ => "–".to_owned(),
                };
                let _ = write!(line, " {cell} |");
            }
        }
        if has_clean {
            let clean = ours
                .iter()
                .chain(&others)
                .filter_map(|imp| get(imp)?.clean)
                .min()
                .unwrap_or(0);
            let flag = if clean < 3 { " (busy: all rounds)" } else { "" };
            let _ = write!(line, " {clean}{flag} |");
        }
        if has_notes {
            let notes: Vec<String> = ours
                .iter()
                .chain(&others)
                .filter_map(|imp| get(imp))
                .filter(|r| !r.note.is_empty())
                .map(|r| format!("{}: {}", r.imp, r.note))
                .collect();
            let _ = write!(line, " {} |", notes.join("; "));
        }
        let _ = writeln!(out, "{line}");
    }
    println!("{out}");
}

/// Whether to run the interleaved passes: only under `cargo bench` (which
/// passes `--bench`), not when `cargo test --benches` runs each benchmark once.
pub(crate) fn interleaving() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Clean rounds an interleaved pass collects per contender.
pub(crate) const ROUNDS: usize = 9;

/// Rounds an interleaved pass tries before it settles for fewer clean ones.
const MAX_ROUNDS: usize = 3 * ROUNDS;

/// A round is clean when no timed thread waited for a CPU longer than this
/// share (‰) of its wall time, and the threads' loops overlapped for at
/// least [`CLEAN_OVERLAP`] of the round: every thread then had a core
/// whenever it could run, so `n` threads really ran in parallel.
const CLEAN_PERMILLE: u64 = 100;

/// See [`CLEAN_PERMILLE`].
const CLEAN_OVERLAP: f64 = 0.9;

/// One implementation in an interleaved pass: given an iteration count,
/// runs that many and returns their time.
pub(crate) struct Contender<'a> {
    name: String,
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Contender<'a> {
    pub(crate) fn new(name: impl Into<String>, run: impl FnMut(u64) -> Duration + 'a) -> Self {
        Contender {
            name: name.into(),
            run: Box::new(run),
        }
    }

    /// Benchmarks this contender with criterion, as [`measure`] does.
    pub(crate) fn measure(
        &mut self,
        group: &mut BenchmarkGroup<'_, WallTime>,
        table: &str,
        scenario: &str,
        variant: &str,
    ) -> bool {
        let name = self.name.clone();
        measure(group, table, scenario, variant, &name, &mut self.run)
    }
}

/// Copies the row of `imp` in (`table`, `scenario`, `variant`) to
/// (`to_table`, `scenario`, `to_variant`) as `to_imp`; whether it existed.
pub(crate) fn copy_row(
    (table, scenario, variant, imp): (&str, &str, &str, &str),
    (to_table, to_variant, to_imp): (&str, &str, &str),
) -> bool {
    let mut rows = ROWS.lock().unwrap();
    let Some((_, row)) = rows.iter().find(|(t, r)| {
        t == table && r.scenario == scenario && r.variant == variant && r.imp == imp
    }) else {
        return false;
    };
    let row = Row {
        variant: to_variant.to_owned(),
        imp: to_imp.to_owned(),
        ..row.clone()
    };
    rows.push((to_table.to_owned(), row));
    true
}

/// Compares `contenders` in interleaved rounds: each is first calibrated to
/// take about `round` per call, then every round runs each of them once (the
/// order rotating from round to round), until each has [`ROUNDS`] clean
/// rounds (no thread waited for a CPU more than [`CLEAN_PERMILLE`] ‰ of the
/// time, and the threads' loops overlapped) or [`MAX_ROUNDS`] rounds have run. Records each contender's median
/// over its clean rounds (over all rounds when fewer than three were clean)
/// in ns per iteration: under `table` the undisturbed time (see
/// [`take_undisturbed`]), under `{table}/wall` the wall time. Load from other
/// processes then falls on every contender alike, which a sequence of long
/// benchmarks (criterion's) cannot promise on a shared machine, and
/// multi-threaded rounds in which the threads did not all have a core are
/// set aside.
pub(crate) fn interleave(
    table: &str,
    scenario: &str,
    variant: &str,
    round: Duration,
    mut contenders: Vec<Contender<'_>>,
) {
    let mut iters = Vec::new();
    for c in &mut contenders {
        let mut n = 1u64;
        let n = loop {
            let d = (c.run)(n);
            if d >= round / 8 || n >= 1 << 32 {
                let per = d.as_secs_f64() / n as f64;
                break ((round.as_secs_f64() / per.max(1e-12)) as u64).max(1);
            }
            n *= 4;
        };
        iters.push(n);
    }
    let k = contenders.len();
    // Per contender, per round: (undisturbed ns/iter, wall ns/iter, clean).
    let mut rounds: Vec<Vec<(f64, f64, bool)>> = vec![Vec::new(); k];
    let clean = |r: &Vec<(f64, f64, bool)>| r.iter().filter(|s| s.2).count();
    for r in 0..MAX_ROUNDS {
        if rounds.iter().all(|x| clean(x) >= ROUNDS) {
            break;
        }
        for j in 0..k {
            let i = (j + r) % k;
            if clean(&rounds[i]) >= ROUNDS {
                continue;
            }
            take_undisturbed();
            let wall = (contenders[i].run)(iters[i]);
            let (undisturbed, clean) = match take_undisturbed() {
                Some(u) => (
                    u.time.min(wall),
                    u.waited_permille <= CLEAN_PERMILLE && u.overlap >= CLEAN_OVERLAP,
                ),
                None => (wall, true),
            };
            let n = iters[i] as f64;
            rounds[i].push((
                undisturbed.as_nanos() as f64 / n,
                wall.as_nanos() as f64 / n,
                clean,
            ));
        }
    }
    // The clean rounds when there are at least three, else every round.
    let mut samples = Vec::new();
    let mut raw = Vec::new();
    let mut clean_counts = Vec::new();
    for r in &rounds {
        let n = clean(r);
        let kept: Vec<_> = r.iter().filter(|s| s.2 || n < 3).collect();
        samples.push(kept.iter().map(|s| s.0).collect::<Vec<_>>());
        raw.push(kept.iter().map(|s| s.1).collect::<Vec<_>>());
        clean_counts.push(n);
    }
    let debug = std::env::var_os("BENCH_DEBUG").is_some();
    let median = |mut s: Vec<f64>| {
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let mut rows = ROWS.lock().unwrap();
    for (((c, s), w), n_clean) in contenders.iter().zip(samples).zip(raw).zip(clean_counts) {
        if debug {
            let rounds: Vec<String> = s.iter().map(|ns| format!("{ns:.1}")).collect();
            let walls: Vec<String> = w.iter().map(|ns| format!("{ns:.1}")).collect();
            eprintln!(
                "{scenario} / {variant} / {}: {} (wall: {}; {n_clean} clean)",
                c.name,
                rounds.join(" "),
                walls.join(" ")
            );
        }
        for (t, ns) in [
            (table.to_owned(), median(s)),
            (format!("{table}/wall"), median(w)),
        ] {
            rows.push((
                t,
                Row {
                    scenario: scenario.to_owned(),
                    variant: variant.to_owned(),
                    imp: c.name.clone(),
                    ns,
                    note: String::new(),
                    clean: Some(n_clean),
                },
            ));
        }
    }
}

/// Attaches `note` to the row of `imp` in `table`, `scenario`, `variant`.
pub(crate) fn note(table: &str, scenario: &str, variant: &str, imp: &str, note: String) {
    let mut rows = ROWS.lock().unwrap();
    if let Some((_, row)) = rows
        .iter_mut()
        .rev()
        .find(|(t, r)| t == table && r.scenario == scenario && r.variant == variant && r.imp == imp)
    {
        row.note = note;
    }
}

/// A thread applying `change(k)` for k = 0, 1, 2, … at a steady `rate` per
/// second until stopped. Changes that fall behind (the thread was not
/// scheduled in time, or a change took longer than a period) are made up
/// back to back, up to 100 periods behind; [`Churn::stop`] reports the rate
/// actually reached.
pub(crate) struct Churn {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
    started: Instant,
}

impl Churn {
    pub(crate) fn start(rate: u32, mut change: impl FnMut(u64) + Send + 'static) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let period = Duration::from_secs(1) / rate;
        let handle = std::thread::Builder::new()
            .name("bench-churn".into())
            .spawn(move || {
                let mut next = Instant::now();
                let mut k = 0;
                while !flag.load(Ordering::Relaxed) {
                    change(k);
                    k += 1;
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else if now - next > period * 100 {
                        next = now;
                    }
                }
                k
            })
            .unwrap();
        Churn {
            stop,
            handle,
            started: Instant::now(),
        }
    }

    /// Stops the thread: the changes it applied, and over how many seconds.
    pub(crate) fn stop(self) -> (u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let changes = self.handle.join().unwrap();
        (changes, self.started.elapsed().as_secs_f64())
    }
}
