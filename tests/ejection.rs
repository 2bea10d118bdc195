//! Ejection never black-holes a group (issue 17): with
//! `DaemonHostConfig::max_ejection_percent` below 100, open circuits keep at
//! most that share of the healthy members out; past it routing uses every
//! healthy member (a panic threshold), and each crossing is counted.

use std::collections::BTreeSet;

use replica_router::*;
use replica_router_testkit::support::*;

fn open_circuit(rt: &DaemonRuntime, origin: u64) {
    for _ in 0..5 {
        assert!(matches!(
            rt.deliver(origin, &Event::new("fail")),
            Err(DeliverError::Daemon { .. })
        ));
    }
}

/// The members 400 routes land on (half through a router, half through
/// `route_event`), with every kind of context.
fn routed(group: &ReplicaGroup) -> BTreeSet<u64> {
    let mut router = group.router();
    (0..200u32)
        .flat_map(|k| {
            let ctx = match k % 3 {
                0 => RequestContext::new(),
                1 => RequestContext::new().with_routing_key(k.to_le_bytes()),
                _ => RequestContext::new().with_session(u64::from(k)),
            };
            [
                router.route(&ctx).unwrap(),
                group.route_event(&ctx).unwrap(),
            ]
        })
        .collect()
}

#[test]
fn past_max_ejection_percent_routing_uses_every_healthy_member() {
    for strategy in Strategy::ALL {
        let rt = runtime(4, 1);
        let host = DaemonHostConfig {
            max_ejection_percent: 50,
            ..DaemonHostConfig::default()
        };
        let group =
            ReplicaGroup::spawn(&rt, "flaky", config_with_host(4, 61, strategy, host)).unwrap();
        let members: Vec<u64> = group.replicas().iter().map(|m| m.origin_hash).collect();
        // Half the members out: within the allowance, they get nothing.
        open_circuit(&rt, members[0]);
        open_circuit(&rt, members[1]);
        let used = routed(&group);
        assert!(
            !used.contains(&members[0]) && !used.contains(&members[1]),
            "{strategy:?}: an open circuit got traffic within the allowance"
        );
        assert_eq!(group.ejection_panics(), 0, "{strategy:?}");
        // A third: past 50%, routing ignores circuits. Counted once.
        open_circuit(&rt, members[2]);
        assert_eq!(group.ejection_panics(), 1, "{strategy:?}");
        let used = routed(&group);
        // The strategies that score failures (latency penalty, error rate)
        // still rank the failing members last among all of them.
        let scores_failures = matches!(
            strategy,
            Strategy::LeastLatency | Strategy::LeastLoad | Strategy::Adaptive
        );
        assert!(
            scores_failures
                || used.contains(&members[0])
                || used.contains(&members[1])
                || used.contains(&members[2]),
            "{strategy:?}: past the threshold only {used:?} got traffic"
        );
        if matches!(strategy, Strategy::RoundRobin | Strategy::LeastConnections) {
            assert_eq!(used.len(), 4, "{strategy:?}: {used:?}");
        }
        // Every member failing: still routed, still one crossing.
        open_circuit(&rt, members[3]);
        assert_eq!(group.ejection_panics(), 1, "{strategy:?}");
        assert!(!routed(&group).is_empty());
        rt.shutdown();
    }
}

#[test]
fn a_crossing_is_counted_again_after_circuits_close() {
    let rt = runtime(4, 1);
    let host = DaemonHostConfig {
        max_ejection_percent: 25,
        circuit_recovery: std::time::Duration::from_millis(50),
        ..DaemonHostConfig::default()
    };
    let group = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_host(4, 62, Strategy::RoundRobin, host),
    )
    .unwrap();
    let members: Vec<u64> = group.replicas().iter().map(|m| m.origin_hash).collect();
    open_circuit(&rt, members[0]);
    open_circuit(&rt, members[1]);
    assert_eq!(group.ejection_panics(), 1);
    // Once the recovery window has passed, a successful probe closes each.
    std::thread::sleep(std::time::Duration::from_millis(80));
    for &m in &members[..2] {
        rt.deliver(m, &Event::new("ok")).unwrap();
    }
    let used = routed(&group);
    assert_eq!(used.len(), 4, "{used:?}");
    open_circuit(&rt, members[2]);
    assert_eq!(group.ejection_panics(), 1);
    assert!(!routed(&group).contains(&members[2]));
    open_circuit(&rt, members[3]);
    assert_eq!(group.ejection_panics(), 2);
    rt.shutdown();
}

#[test]
fn by_default_every_circuit_may_open() {
    assert_eq!(DaemonHostConfig::default().max_ejection_percent, 100);
    let rt = runtime(3, 1);
    let group = ReplicaGroup::spawn(&rt, "flaky", config(3, 63, Strategy::RoundRobin)).unwrap();
    for m in group.replicas() {
        open_circuit(&rt, m.origin_hash);
    }
    assert_eq!(
        group.route_event(&RequestContext::new()),
        Err(GroupError::NoHealthyMember)
    );
    assert_eq!(group.ejection_panics(), 0);
    rt.shutdown();
}

#[test]
fn a_max_ejection_percent_over_100_is_invalid_config() {
    let rt = runtime(3, 1);
    let host = DaemonHostConfig {
        max_ejection_percent: 101,
        ..DaemonHostConfig::default()
    };
    let err = ReplicaGroup::spawn(
        &rt,
        "flaky",
        config_with_host(3, 64, Strategy::Random, host),
    )
    .unwrap_err();
    assert!(
        matches!(&err, GroupError::InvalidConfig(m) if m.contains("max_ejection_percent")),
        "{err:?}"
    );
    rt.shutdown();
}
