//! Replica statistics through the `metrics` facade (feature `metrics`): the
//! figures of [`ReplicaGroup::stats`](crate::ReplicaGroup::stats) as gauges
//! and counters, for whatever exporter the program installs (Prometheus,
//! StatsD, …).

use crate::{CircuitState, DaemonRuntime};

impl DaemonRuntime {
    /// Records every live group's replica statistics with the installed
    /// `metrics` recorder; call it periodically (every few seconds), or
    /// before a scrape. Each series is labelled `group` (the id in hex),
    /// `kind` and `replica` (the index), and `node`:
    ///
    /// | name | type | what |
    /// |---|---|---|
    /// | `replica_router_replica_healthy` | gauge | 1 when routing may pick it |
    /// | `replica_router_replica_in_flight` | gauge | deliveries under way |
    /// | `replica_router_replica_processed_total` | counter | events processed here |
    /// | `replica_router_replica_errors_total` | counter | events it failed |
    /// | `replica_router_replica_latency_seconds` | gauge | the latency estimate (absent before one) |
    /// | `replica_router_replica_circuit_state` | gauge | 0 closed, 1 open, 2 half-open |
    ///
    /// A removed group's series keep their last values in the recorder (use
    /// the exporter's idle timeout to drop them).
    ///
    /// ```
    /// # use replica_router::*;
    /// let runtime = DaemonRuntime::new((1..=3).map(NodeInfo::new));
    /// runtime.start().unwrap();
    /// // With no recorder installed this records nowhere, and costs little.
    /// runtime.record_metrics();
    /// ```
    pub fn record_metrics(&self) {
        for group in self.groups() {
            let id = format!("{:#010x}", group.group_id());
            let kind = group.kind().to_owned();
            for s in group.stats() {
                let labels = [
                    ("group", id.clone()),
                    ("kind", kind.clone()),
                    ("replica", s.index.to_string()),
                    ("node", s.node_id.to_string()),
                ];
                metrics::gauge!("replica_router_replica_healthy", &labels)
                    .set(f64::from(u8::from(s.healthy)));
                metrics::gauge!("replica_router_replica_in_flight", &labels)
                    .set(f64::from(s.in_flight));
                metrics::counter!("replica_router_replica_processed_total", &labels)
                    .absolute(s.processed);
                metrics::counter!("replica_router_replica_errors_total", &labels)
                    .absolute(s.errors);
                if let Some(latency) = s.latency {
                    metrics::gauge!("replica_router_replica_latency_seconds", &labels)
                        .set(latency.as_secs_f64());
                }
                let circuit = match s.circuit {
                    CircuitState::Closed => 0.0,
                    CircuitState::Open => 1.0,
                    _ => 2.0,
                };
                metrics::gauge!("replica_router_replica_circuit_state", &labels).set(circuit);
            }
        }
    }
}
