//! Slow start (issue 17): with `DaemonHostConfig::slow_start` set, a new or
//! recovered replica starts at a tenth of its share and ramps to a full
//! share over the window, under `RoundRobin`, `WeightedRoundRobin`,
//! `LeastConnections` and `PowerOfTwo`. Off by default.

use std::time::{Duration, Instant};

use replica_router::*;
use replica_router_testkit::support::*;

const RAMPING: [Strategy; 4] = [
    Strategy::RoundRobin,
    Strategy::WeightedRoundRobin,
    Strategy::LeastConnections,
    Strategy::PowerOfTwo,
];

fn with_slow_start(count: u8, strategy: Strategy, window: Duration) -> ReplicaGroupConfig {
    let host = DaemonHostConfig {
        slow_start: window,
        ..DaemonHostConfig::default()
    };
    config_with_host(count, 91, strategy, host)
}

/// Routes and delivers `n` events; the share `origin` took.
fn share_of(rt: &DaemonRuntime, group: &ReplicaGroup, origin: u64, n: usize) -> f64 {
    let mut router = group.router();
    let mut hits = 0;
    for _ in 0..n {
        let picked = router.route(&RequestContext::new()).unwrap();
        rt.deliver(picked, &Event::new("e")).unwrap();
        hits += usize::from(picked == origin);
    }
    hits as f64 / n as f64
}

fn newest(group: &ReplicaGroup) -> u64 {
    let replicas = group.replicas();
    replicas.last().unwrap().origin_hash
}

#[test]
fn a_new_replica_starts_at_a_tenth_of_its_share_and_ramps_to_full() {
    let window = Duration::from_millis(1_500);
    for strategy in RAMPING {
        let rt = runtime(4, 1);
        let group = ReplicaGroup::spawn(&rt, "echo", with_slow_start(3, strategy, window)).unwrap();
        // The first replicas are past their ramp once the window has gone.
        std::thread::sleep(window);
        group.scale_to(4).unwrap();
        let added = Instant::now();
        let fresh = newest(&group);
        let early = share_of(&rt, &group, fresh, 2_000);
        eprintln!("{strategy:?}: new replica took {early:.3}");
        assert!(
            added.elapsed() < window / 5,
            "the machine is too slow for this test"
        );
        // A full share is a quarter; a tenth of it, passed over, goes to
        // the others.
        assert!(
            early < 0.10,
            "{strategy:?}: fresh replica took {early:.3} at once"
        );
        assert!(
            early > 0.0,
            "{strategy:?}: fresh replica took nothing at all"
        );
        std::thread::sleep(window.saturating_sub(added.elapsed()));
        let later = share_of(&rt, &group, fresh, 2_000);
        assert!(
            (0.18..=0.32).contains(&later),
            "{strategy:?}: ramped replica took {later:.3}, not about a quarter"
        );
        rt.shutdown();
    }
}

#[test]
fn a_recovered_replica_ramps_again() {
    let window = Duration::from_millis(1_500);
    for strategy in RAMPING {
        // Three nodes for three replicas: no spare node, so a failed node's
        // replica waits unhealthy for its node to recover.
        let rt = runtime(3, 1);
        let group = ReplicaGroup::spawn(&rt, "echo", with_slow_start(3, strategy, window)).unwrap();
        std::thread::sleep(window);
        let member = group.replicas()[0].clone();
        let node = member.node_id;
        rt.node_failed(node).unwrap();
        assert_eq!(group.healthy_count(), 2);
        rt.node_recovered(node).unwrap();
        assert_eq!(group.healthy_count(), 3);
        let recovered = Instant::now();
        let early = share_of(&rt, &group, member.origin_hash, 2_000);
        eprintln!("{strategy:?}: recovered replica took {early:.3}");
        assert!(
            recovered.elapsed() < window / 5,
            "the machine is too slow for this test"
        );
        assert!(
            early < 0.13,
            "{strategy:?}: recovered replica took {early:.3} at once"
        );
        std::thread::sleep(window.saturating_sub(recovered.elapsed()));
        let later = share_of(&rt, &group, member.origin_hash, 2_000);
        assert!(
            (0.25..=0.42).contains(&later),
            "{strategy:?}: ramped replica took {later:.3}, not about a third"
        );
        rt.shutdown();
    }
}

#[test]
fn slow_start_is_off_by_default() {
    assert_eq!(DaemonHostConfig::default().slow_start, Duration::ZERO);
    for strategy in RAMPING {
        let rt = runtime(4, 1);
        let group = ReplicaGroup::spawn(&rt, "echo", config(3, 91, strategy)).unwrap();
        group.scale_to(4).unwrap();
        let at_once = share_of(&rt, &group, newest(&group), 2_000);
        assert!(
            (0.18..=0.32).contains(&at_once),
            "{strategy:?}: new replica took {at_once:.3} without slow start"
        );
        rt.shutdown();
    }
}
