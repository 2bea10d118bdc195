//! `--json`: the run's summary as one JSON object, printed as the last line.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::report::Summary;
use crate::workload::REASONS;

impl Summary {
    pub(crate) fn json(&self) -> Value {
        let t = &self.totals;
        let c = &self.chaos;
        let (route, dispatch) = (
            self.all_histograms(|t| &t.route_ns),
            self.all_histograms(|t| &t.dispatch_ns),
        );
        let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q);
        let strategies: Vec<Value> = self
            .rows()
            .iter()
            .map(|r| {
                json!({
                    "strategy": r.name,
                    "groups": r.groups,
                    "events": r.events,
                    "share_max": r.share.map(|s| s.0),
                    "share_min": r.share.map(|s| s.1),
                    "failovers": r.failovers,
                    "route_ns_p50": q(&r.route, 0.5),
                    "route_ns_p99": q(&r.route, 0.99),
                    "dispatch_ns_p50": q(&r.dispatch, 0.5),
                    "dispatch_ns_p99": q(&r.dispatch, 0.99),
                })
            })
            .collect();
        let rejected: serde_json::Map<String, Value> = REASONS
            .iter()
            .zip(t.rejected)
            .map(|(r, n)| (r.replace(' ', "_"), json!(n)))
            .collect();
        json!({
            "events_routed": t.routed,
            "events_delivered": self.delivered(),
            "events_rejected": t.rejected_total(),
            "events_lost": self.lost(),
            "events_duplicated": self.duplicated(),
            "events_processed_by_daemons": self.processed(),
            "events_failed_by_daemons": t.failed,
            "rejected_by_reason": rejected,
            "failovers": self.failovers(),
            "replaced_on_node_failure": c.replaced,
            "failovers_per_sec": self.failovers_per_sec(),
            "nodes_failed": c.nodes_failed,
            "flaps": c.flaps,
            "nodes_recovered": c.nodes_recovered,
            "nodes_added": c.nodes_added,
            "scale_events": c.scale_events,
            "scale_refused": c.scale_refused,
            "chaos_errors": c.errors,
            "chaos_ticks": c.ticks,
            "route_ns_p50": q(&route, 0.5),
            "route_ns_p99": q(&route, 0.99),
            "dispatch_ns_p50": q(&dispatch, 0.5),
            "dispatch_ns_p99": q(&dispatch, 0.99),
            "events_per_sec": self.events_per_sec().round(),
            "delivered_per_sec": (self.delivered() as f64 / self.elapsed).round(),
            "elapsed_sec": self.elapsed,
            "seconds": self.seconds,
            "seed": self.seed,
            "threads": self.threads,
            "nodes": self.nodes,
            "groups": self.groups,
            "daemons_created": self.daemons,
            "timer_overhead_ns": self.timer_ns,
            "strategies": strategies,
        })
    }
}
