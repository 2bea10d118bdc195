//! The `metrics` feature (issue 16): `DaemonRuntime::record_metrics` puts
//! every replica's statistics through the `metrics` facade, labelled by
//! group, kind and replica, and a real Prometheus exporter renders them.

use metrics_exporter_prometheus::PrometheusBuilder;
use replica_router::*;
use replica_router_testkit::support::*;

#[test]
fn replica_statistics_reach_a_prometheus_exporter() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = runtime(3, 1);
    let group = ReplicaGroup::spawn(&rt, "flaky", config(2, 9, Strategy::RoundRobin)).unwrap();
    let origin = group.replicas()[0].origin_hash;
    for payload in ["a", "b", "fail"] {
        let _ = rt.deliver(origin, &Event::new(payload));
    }
    metrics::with_local_recorder(&recorder, || rt.record_metrics());
    let text = handle.render();
    let id = format!("{:#010x}", group.group_id());
    let labels = |replica: u8| {
        let node = group.replicas()[replica as usize].node_id;
        format!("group=\"{id}\",kind=\"flaky\",replica=\"{replica}\",node=\"{node}\"")
    };
    for (line, value) in [
        (
            format!("replica_router_replica_processed_total{{{}}}", labels(0)),
            "3",
        ),
        (
            format!("replica_router_replica_errors_total{{{}}}", labels(0)),
            "1",
        ),
        (
            format!("replica_router_replica_processed_total{{{}}}", labels(1)),
            "0",
        ),
        (
            format!("replica_router_replica_healthy{{{}}}", labels(1)),
            "1",
        ),
        (
            format!("replica_router_replica_in_flight{{{}}}", labels(0)),
            "0",
        ),
        (
            format!("replica_router_replica_circuit_state{{{}}}", labels(0)),
            "0",
        ),
    ] {
        let found = text
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("no {line} in:\n{text}"));
        assert_eq!(found, format!("{line} {value}"), "in:\n{text}");
    }
    assert!(
        text.contains("replica_router_replica_latency_seconds{"),
        "{text}"
    );
    rt.shutdown();
}
