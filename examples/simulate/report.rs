//! What the run prints: the header, the table per strategy, the accounting
//! and the verdict.

use std::io::IsTerminal;

use hdrhistogram::Histogram;
use replica_router::Strategy;

use crate::chaos::ChaosReport;
use crate::workload::{ThreadReport, KINDS, REASONS};
use crate::Args;

/// One point of the throughput series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Seconds since the start.
    pub(crate) t: f64,
    pub(crate) events_per_sec: f64,
    /// Failovers so far.
    pub(crate) failovers: u64,
}

/// A group at the end of the run.
#[derive(Debug)]
pub(crate) struct GroupEnd {
    /// Index in `Strategy::ALL`.
    pub(crate) strategy: usize,
    /// Re-placements of its members (the roster's term).
    pub(crate) failovers: u64,
    pub(crate) replicas: u8,
    pub(crate) healthy: u8,
}

/// Everything the run measured.
pub(crate) struct Summary {
    pub(crate) seconds: u64,
    pub(crate) seed: u64,
    pub(crate) threads: usize,
    pub(crate) nodes: u64,
    pub(crate) groups: u16,
    /// Replicas every group has all along: the ones shares are compared over.
    pub(crate) floor: usize,
    pub(crate) elapsed: f64,
    pub(crate) timer_ns: u64,
    pub(crate) totals: ThreadReport,
    /// Processed per kind, as the daemons counted.
    pub(crate) processed: [u64; KINDS.len()],
    pub(crate) daemons: usize,
    pub(crate) chaos: ChaosReport,
    pub(crate) group_ends: Vec<GroupEnd>,
    pub(crate) series: Vec<Sample>,
    pub(crate) flapper: Option<u64>,
}

/// One strategy's line of the table.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) groups: usize,
    pub(crate) events: u64,
    /// Busiest and idlest replica's share of its group's events, worst groups.
    pub(crate) share: Option<(f64, f64)>,
    pub(crate) failovers: u64,
    pub(crate) route: Histogram<u64>,
    pub(crate) dispatch: Histogram<u64>,
}

pub(crate) fn print_header(args: &Args, threads: usize, flapper: Option<u64>) {
    let (low, high) = args.scale();
    say!(
        "replica-router chaos simulation: {} s, seed {}",
        args.seconds,
        args.seed
    );
    say!(
        "  cluster  {} nodes in {} zones, {} more joining; {}",
        args.nodes,
        args.zones,
        args.add_nodes,
        flapper.map_or("no flapping node".into(), |n| format!(
            "node {n} flaps 5 times a second"
        )),
    );
    say!(
        "  groups   {} groups of {low}-{high} replicas, {} kinds, all {} strategies",
        args.groups,
        KINDS.len(),
        Strategy::ALL.len()
    );
    say!("  routing  {threads} threads, Router::dispatch, 1 route in 64 timed");
    say!();
}

/// `1234567.0` as `1.23M`.
pub(crate) fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ns(h: &Histogram<u64>, q: f64) -> String {
    if h.is_empty() {
        return "-".into();
    }
    match h.value_at_quantile(q) {
        v if v < 10_000 => format!("{v} ns"),
        v if v < 10_000_000 => format!("{} µs", v / 1000),
        v => format!("{} ms", v / 1_000_000),
    }
}

impl Summary {
    pub(crate) fn delivered(&self) -> u64 {
        self.totals.delivered + self.totals.failed
    }

    pub(crate) fn processed(&self) -> u64 {
        self.processed.iter().sum()
    }

    /// Events that have no outcome, or that the daemons did not process.
    pub(crate) fn lost(&self) -> u64 {
        let t = &self.totals;
        let outcomes = self.delivered() + t.rejected_total();
        t.routed.saturating_sub(outcomes) + self.delivered().saturating_sub(self.processed())
    }

    /// Events counted twice, or processed more often than delivered.
    pub(crate) fn duplicated(&self) -> u64 {
        let t = &self.totals;
        let outcomes = self.delivered() + t.rejected_total();
        outcomes.saturating_sub(t.routed) + self.processed().saturating_sub(self.delivered())
    }

    pub(crate) fn accounted(&self) -> bool {
        self.lost() == 0 && self.duplicated() == 0
    }

    pub(crate) fn events_per_sec(&self) -> f64 {
        self.totals.routed as f64 / self.elapsed
    }

    /// Members re-placed on another node, keeping their identity: every
    /// group's term summed.
    pub(crate) fn failovers(&self) -> u64 {
        self.group_ends.iter().map(|g| g.failovers).sum()
    }

    pub(crate) fn failovers_per_sec(&self) -> f64 {
        self.failovers() as f64 / self.elapsed
    }

    pub(crate) fn all_histograms(
        &self,
        of: impl Fn(&ThreadReport) -> &Vec<Histogram<u64>>,
    ) -> Histogram<u64> {
        let mut all = of(&self.totals)[0].clone();
        for h in &of(&self.totals)[1..] {
            all.add(h).expect("same bounds");
        }
        all
    }

    pub(crate) fn rows(&self) -> Vec<Row> {
        let t = &self.totals;
        let mut rows: Vec<Row> = Strategy::ALL
            .iter()
            .enumerate()
            .map(|(s, strategy)| Row {
                name: format!("{strategy:?}"),
                groups: 0,
                events: 0,
                share: None,
                failovers: 0,
                route: t.route_ns[s].clone(),
                dispatch: t.dispatch_ns[s].clone(),
            })
            .collect();
        for (g, end) in self.group_ends.iter().enumerate() {
            let row = &mut rows[end.strategy];
            row.groups += 1;
            row.events += t.events[g];
            row.failovers += end.failovers;
            let counts = &t.shares[g * t.stride..][..self.floor.min(t.stride)];
            let sum: u64 = counts.iter().sum();
            if sum > 0 {
                let max = *counts.iter().max().unwrap_or(&0) as f64 / sum as f64;
                let min = *counts.iter().min().unwrap_or(&0) as f64 / sum as f64;
                row.share = Some(match row.share {
                    Some((hi, lo)) => (hi.max(max), lo.min(min)),
                    None => (max, min),
                });
            }
        }
        rows.retain(|r| r.groups > 0);
        rows
    }

    pub(crate) fn print(&self) {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let paint = |code: &str, text: &str| match color {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_owned(),
        };
        let fair = 100.0 / self.floor as f64;
        // One layout for the header, a row per strategy and the total.
        let line = |c: [&dyn std::fmt::Display; 9]| {
            format!(
                "{:<24} {:>6} {:>8} {:>15} {:>9} {:>10} {:>7} {:>13} {:>7}",
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
            )
        };
        let header = line([
            &"strategy",
            &"groups",
            &"events",
            &"share max-min",
            &"failovers",
            &"route p50",
            &"p99",
            &"dispatch p50",
            &"p99",
        ]);
        say!("{}", paint("1", &header));
        let share = |s: Option<(f64, f64)>| match s {
            Some((hi, lo)) => format!("{:.1}% - {:.1}%", hi * 100.0, lo * 100.0),
            None => "-".into(),
        };
        for r in self.rows() {
            say!(
                "{}",
                line([
                    &r.name,
                    &r.groups,
                    &si(r.events as f64),
                    &share(r.share),
                    &r.failovers,
                    &ns(&r.route, 0.5),
                    &ns(&r.route, 0.99),
                    &ns(&r.dispatch, 0.5),
                    &ns(&r.dispatch, 0.99),
                ])
            );
        }
        let (route, dispatch) = (
            self.all_histograms(|t| &t.route_ns),
            self.all_histograms(|t| &t.dispatch_ns),
        );
        let total = line([
            &"all",
            &self.groups,
            &si(self.totals.routed as f64),
            &"",
            &self.failovers(),
            &ns(&route, 0.5),
            &ns(&route, 0.99),
            &ns(&dispatch, 0.5),
            &ns(&dispatch, 0.99),
        ]);
        say!("{}", paint("1", &total));
        say!(
            "  share    busiest and idlest replica's part of its group's routes (fair: {fair:.1}% each)"
        );
        say!(
            "  times    1 event in 64, net of the {} ns a clock read costs; routes are cold (random group",
            self.timer_ns
        );
        say!("           per event); dispatch = route + deliver to the daemon + any re-route");
        say!();

        let t = &self.totals;
        let c = &self.chaos;
        say!(
            "events   {} routed = {} delivered + {} rejected; {} lost",
            thousands(t.routed),
            thousands(self.delivered()),
            thousands(t.rejected_total()),
            thousands(self.lost()),
        );
        let kinds: Vec<String> = KINDS
            .iter()
            .zip(self.processed)
            .map(|(k, n)| format!("{k} {}", si(n as f64)))
            .collect();
        say!(
            "         daemons processed {} ({}) in {} instances",
            thousands(self.processed()),
            kinds.join(", "),
            self.daemons,
        );
        let reasons: Vec<String> = REASONS
            .iter()
            .zip(t.rejected)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {}", thousands(n)))
            .collect();
        say!(
            "         rejected: {}; failed by a daemon: {}",
            if reasons.is_empty() {
                "none".into()
            } else {
                reasons.join(", ")
            },
            t.failed,
        );
        let flaps = self.flapper.map_or(String::new(), |n| {
            format!(" ({} by flapping node {n})", c.flaps)
        });
        let refused = match c.scale_refused {
            0 => String::new(),
            n => format!(" ({n} refused)"),
        };
        say!(
            "chaos    {} node failures{flaps}, {} recoveries, {} nodes added, {} rescales{refused}",
            c.nodes_failed,
            c.nodes_recovered,
            c.nodes_added,
            c.scale_events,
        );
        if c.errors > 0 {
            say!("         {} chaos actions refused by the runtime", c.errors);
        }
        let healthy = self
            .group_ends
            .iter()
            .filter(|g| g.healthy == g.replicas)
            .count();
        say!(
            "rate     {} events/s and {:.1} failovers/s over {:.2} s; {healthy} of {} groups healthy at the end",
            si(self.events_per_sec()),
            self.failovers_per_sec(),
            self.elapsed,
            self.group_ends.len(),
        );
        say!();
        if self.accounted() {
            say!(
                "{}  {} events at {}/s through {} failovers ({:.1}/s), none lost",
                paint("1;32", "verdict: PASS"),
                si(t.routed as f64),
                si(self.events_per_sec()),
                self.failovers(),
                self.failovers_per_sec(),
            );
        } else {
            say!(
                "{}  {} events lost and {} counted twice, out of {} dispatched",
                paint("1;31", "verdict: FAIL"),
                thousands(self.lost()),
                thousands(self.duplicated()),
                thousands(t.routed),
            );
        }
    }
}
