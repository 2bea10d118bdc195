//! What the tails phase prints, and its part of the `--json` summary.

use hdrhistogram::Histogram;
use replica_router::Strategy;
use serde_json::{json, Value};

use crate::report::thousands;
use crate::spinner::{Role, NORMAL, SLOW};
use crate::tails::{Run, Tails, TIME_PER_EVENT};

/// One strategy's line: its run with the slow replica, its run with the
/// slow and the flaky replica, and its run with every replica fast.
pub(crate) struct Line<'t> {
    pub(crate) strategy: Strategy,
    pub(crate) slow: &'t Run,
    pub(crate) flaky: &'t Run,
    pub(crate) all_fast: &'t Run,
    /// The all-fast p99 of every strategy together, in µs: the yardstick.
    /// One strategy's own all-fast p99 rests on 40 events, and one
    /// preemption too many moves it tenfold on a busy machine.
    pub(crate) yardstick_us: f64,
}

impl Line<'_> {
    /// A run's p99 over the all-fast p99 of every strategy together.
    pub(crate) fn p99_vs_all_fast(&self, run: &Run) -> f64 {
        us(&run.dispatch_ns, 0.99) / self.yardstick_us
    }
}

/// A quantile in microseconds.
fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// The goals of issue 17: with one replica ten times slower, the
/// latency-aware strategies keep p99 within 1.5× of all-fast and round
/// robin's p99 grows 5× or more; with a flaky replica too, the
/// latency-aware strategies give it at most 20%.
const AWARE: [Strategy; 2] = [Strategy::LeastLatency, Strategy::Adaptive];
const AWARE_P99_MAX: f64 = 1.5;
const ROUND_ROBIN_P99_MIN: f64 = 5.0;
const AWARE_FLAKY_MAX: f64 = 0.2;

impl Tails {
    pub(crate) fn lines(&self) -> Vec<Line<'_>> {
        let yardstick_us = us(&self.all_fast_pooled(), 0.99);
        (Strategy::ALL.iter().enumerate())
            .map(|(s, &strategy)| Line {
                strategy,
                slow: &self.slow[s],
                flaky: &self.slow_and_flaky[s],
                all_fast: &self.all_fast[s],
                yardstick_us,
            })
            .collect()
    }

    /// Every strategy's all-fast dispatch times together.
    pub(crate) fn all_fast_pooled(&self) -> Histogram<u64> {
        let mut pooled = self.all_fast[0].dispatch_ns.clone();
        for run in &self.all_fast[1..] {
            pooled.add(&run.dispatch_ns).expect("same bounds");
        }
        pooled
    }

    fn runs(&self) -> impl Iterator<Item = &Run> {
        (self.all_fast.iter())
            .chain(&self.slow)
            .chain(&self.slow_and_flaky)
    }

    pub(crate) fn unaccounted(&self) -> u64 {
        self.runs().map(Run::unaccounted).sum()
    }

    fn line(&self, strategy: Strategy) -> Option<Line<'_>> {
        self.lines().into_iter().find(|l| l.strategy == strategy)
    }

    /// Each goal, as (what, measured, met).
    pub(crate) fn goals(&self) -> Vec<(String, String, bool)> {
        let mut goals = Vec::new();
        for strategy in AWARE {
            if let Some(l) = self.line(strategy) {
                let ratio = l.p99_vs_all_fast(l.slow);
                goals.push((
                    format!("{strategy:?} p99 ≤ {AWARE_P99_MAX}× all-fast"),
                    format!("{ratio:.2}×"),
                    ratio <= AWARE_P99_MAX,
                ));
            }
        }
        if let Some(l) = self.line(Strategy::RoundRobin) {
            let ratio = l.p99_vs_all_fast(l.slow);
            goals.push((
                format!("RoundRobin p99 ≥ {ROUND_ROBIN_P99_MIN}× all-fast"),
                format!("{ratio:.2}×"),
                ratio >= ROUND_ROBIN_P99_MIN,
            ));
        }
        for strategy in AWARE {
            let line = self.line(strategy);
            if let Some(share) = line.and_then(|l| l.flaky.share(Role::Flaky)) {
                goals.push((
                    format!("{strategy:?} flaky share ≤ {:.0}%", AWARE_FLAKY_MAX * 100.0),
                    percent(Some(share)),
                    share <= AWARE_FLAKY_MAX,
                ));
            }
        }
        goals
    }

    pub(crate) fn print(&self) {
        let p = &self.plan;
        say!();
        say!(
            "tails: per strategy, 4 replicas on 4 nodes; {} threads dispatch up to {} events with no key,",
            p.threads,
            thousands(p.events),
        );
        say!(
            "       timed whole (Router::dispatch). Node {} takes {} µs an event, the others {} µs;",
            self.slow_node,
            SLOW.as_micros(),
            NORMAL.as_micros(),
        );
        say!(
            "       then with {} too, then with all replicas fast.",
            self.flaky.map_or("no replica flaky".into(), |i| format!(
                "replica {i} failing every other event at once"
            )),
        );
        say!(
            "{:<24} {:^40}   {:^50}",
            "",
            "one slow replica",
            "one slow and one flaky replica"
        );
        say!(
            "{:<24} {:>9} {:>10} {:>10} {:>6}   {:>10} {:>10} {:>6} {:>6} {:>6} {:>13}",
            "strategy",
            "p50",
            "p99",
            "÷ all-fast",
            "slow",
            "p99",
            "÷ all-fast",
            "slow",
            "flaky",
            "failed",
            "all-fast p99"
        );
        for l in self.lines() {
            say!(
                "{:<24} {:>6.1} µs {:>7.1} µs {:>9.2}× {:>6}   {:>7.1} µs {:>9.2}× {:>6} {:>6} {:>6} {:>10.1} µs",
                format!("{:?}", l.strategy),
                us(&l.slow.dispatch_ns, 0.5),
                us(&l.slow.dispatch_ns, 0.99),
                l.p99_vs_all_fast(l.slow),
                percent(l.slow.share(Role::Slow)),
                us(&l.flaky.dispatch_ns, 0.99),
                l.p99_vs_all_fast(l.flaky),
                percent(l.flaky.share(Role::Slow)),
                percent(l.flaky.share(Role::Flaky)),
                l.flaky.failed,
                us(&l.all_fast.dispatch_ns, 0.99),
            );
        }
        let pooled = self.all_fast_pooled();
        say!(
            "  ÷ all-fast  p99 over the all-fast p99 of every strategy together: {:.1} µs (p50 {:.1} µs)",
            us(&pooled, 0.99),
            us(&pooled, 0.5),
        );
        say!("  slow, flaky the slow and the flaky replica's shares of the events");
        say!("  all-fast    the strategy's own p99 with every replica fast");
        say!("  no key      ConsistentHash is round robin; Adaptive its weighted schedule checked by cost");
        let cut: Vec<u64> = (self.runs())
            .filter(|r| r.dispatched < p.events)
            .map(|r| r.dispatched)
            .collect();
        if let Some(fewest) = cut.iter().min() {
            say!(
                "  cut short   {} of {} runs ran out of time ({} µs an event), the shortest after {} events",
                cut.len(),
                self.runs().count(),
                TIME_PER_EVENT.as_micros(),
                thousands(*fewest),
            );
        }
        if let Some(load) = load_average() {
            say!(
                "  machine     load average {load:.2} (1 min) on {} cores; on a busy machine preemption reaches p99",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
        }
        let goals: Vec<String> = self
            .goals()
            .into_iter()
            .map(|(what, measured, met)| {
                format!("{what}: {measured} {}", if met { "met" } else { "MISSED" })
            })
            .collect();
        for (i, pair) in goals.chunks(2).enumerate() {
            say!(
                "  {:<12}{}",
                if i == 0 { "goals" } else { "" },
                pair.join("; ")
            );
        }
        let sum = |f: fn(&Run) -> u64| self.runs().map(f).sum::<u64>();
        say!(
            "  events      {} dispatched = {} ok + {} failed by a daemon + {} rejected; {} unaccounted ({:.1} s)",
            thousands(sum(|r| r.dispatched)),
            thousands(sum(|r| r.ok)),
            thousands(sum(|r| r.failed)),
            thousands(sum(|r| r.rejected)),
            thousands(self.unaccounted()),
            self.elapsed,
        );
    }

    /// Adds the phase's fields to the `--json` summary.
    pub(crate) fn extend_json(&self, summary: &mut Value) {
        let rows: Vec<Value> = self
            .lines()
            .iter()
            .map(|l| {
                json!({
                    "strategy": format!("{:?}", l.strategy),
                    "all_fast_p50_us": us(&l.all_fast.dispatch_ns, 0.5),
                    "all_fast_p99_us": us(&l.all_fast.dispatch_ns, 0.99),
                    "slow": run_json(l, l.slow),
                    "slow_and_flaky": run_json(l, l.flaky),
                })
            })
            .collect();
        let goals: Vec<Value> = (self.goals().into_iter())
            .map(|(goal, measured, met)| json!({"goal": goal, "measured": measured, "met": met}))
            .collect();
        let pooled = self.all_fast_pooled();
        let Some(object) = summary.as_object_mut() else {
            return;
        };
        for (key, value) in [
            ("tails", json!(rows)),
            ("tails_all_fast_p50_us", json!(us(&pooled, 0.5))),
            ("tails_all_fast_p99_us", json!(us(&pooled, 0.99))),
            ("tails_goals", json!(goals)),
            ("tails_events_per_strategy", json!(self.plan.events)),
            (
                "tails_runs_cut_short",
                json!(self
                    .runs()
                    .filter(|r| r.dispatched < self.plan.events)
                    .count()),
            ),
            ("tails_threads", json!(self.plan.threads)),
            ("tails_slow_node", json!(self.slow_node)),
            ("tails_flaky_replica", json!(self.flaky)),
            ("tails_events_unaccounted", json!(self.unaccounted())),
            ("tails_elapsed_sec", json!(self.elapsed)),
            ("tails_load_average", json!(load_average())),
        ] {
            object.insert(key.into(), value);
        }
    }
}

/// One run's figures in the `--json` summary.
fn run_json(line: &Line, run: &Run) -> Value {
    json!({
        "events": run.dispatched,
        "p50_us": us(&run.dispatch_ns, 0.5),
        "p99_us": us(&run.dispatch_ns, 0.99),
        "p99_vs_all_fast": line.p99_vs_all_fast(run),
        "slow_share": run.share(Role::Slow),
        "flaky_share": run.share(Role::Flaky),
        "failed_by_daemon": run.failed,
        "rejected": run.rejected,
        "fast_only_p99_us": us(&run.fast_ns, 0.99),
        "seconds": run.seconds,
    })
}

/// The phase's `--json` fields when `--tails-events 0` skipped it.
pub(crate) fn skipped_json(summary: &mut Value) {
    if let Some(object) = summary.as_object_mut() {
        object.insert("tails".into(), json!([]));
        object.insert("tails_all_fast_p99_us".into(), Value::Null);
    }
}

/// The 1-minute load average, where the system tells it (Linux).
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
