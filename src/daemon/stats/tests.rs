//! The statistics of one replica: in flight, circuit, latency estimate.

use super::*;
use std::sync::{Arc, Barrier};

const WINDOW: Duration = Duration::from_millis(40);

/// A group's settings: threshold 5, recovery `WINDOW`, decay 10 s.
fn settings() -> HostSettings {
    let config = crate::DaemonHostConfig {
        circuit_failure_threshold: 5,
        circuit_recovery: WINDOW,
        ..crate::DaemonHostConfig::default()
    };
    HostSettings::new(config, true, true)
}

fn decay() -> Decay {
    settings().decay
}

fn fail(stats: &ReplicaStats, admission: Admission) {
    stats.record(
        admission,
        Some((Duration::from_micros(5), 0)),
        false,
        Some(0.0),
        &settings(),
    );
}

#[test]
fn circuit_opens_after_threshold_consecutive_failures() {
    let stats = ReplicaStats::default();
    for _ in 0..4 {
        assert_eq!(stats.admit(WINDOW), Admission::Closed);
        fail(&stats, Admission::Closed);
    }
    assert!(stats.routable());
    fail(&stats, Admission::Closed);
    assert!(!stats.routable());
    assert_eq!(stats.admit(WINDOW), Admission::Rejected);
    assert_eq!(stats.consecutive_failures(), 5);
}

#[test]
fn success_resets_consecutive_failures() {
    let stats = ReplicaStats::default();
    for _ in 0..4 {
        fail(&stats, Admission::Closed);
    }
    stats.record(
        Admission::Closed,
        Some((Duration::from_micros(5), 0)),
        true,
        Some(0.0),
        &settings(),
    );
    fail(&stats, Admission::Closed);
    assert!(stats.routable());
    assert_eq!(stats.errors(), 5);
}

#[test]
fn circuit_half_opens_for_one_probe_then_closes_on_success() {
    let stats = ReplicaStats::default();
    for _ in 0..5 {
        fail(&stats, Admission::Closed);
    }
    std::thread::sleep(WINDOW + Duration::from_millis(5));
    assert!(stats.routable(), "window passed: routable for the probe");
    assert_eq!(stats.admit(WINDOW), Admission::Probe);
    assert_eq!(
        stats.admit(WINDOW),
        Admission::Rejected,
        "one probe at a time"
    );
    assert!(!stats.routable());
    stats.record(
        Admission::Probe,
        Some((Duration::from_micros(5), 0)),
        true,
        Some(0.0),
        &settings(),
    );
    assert_eq!(stats.admit(WINDOW), Admission::Closed);
}

#[test]
fn failed_probe_reopens_the_circuit() {
    let stats = ReplicaStats::default();
    for _ in 0..5 {
        fail(&stats, Admission::Closed);
    }
    std::thread::sleep(WINDOW + Duration::from_millis(5));
    assert_eq!(stats.admit(WINDOW), Admission::Probe);
    fail(&stats, Admission::Probe);
    assert_eq!(stats.admit(WINDOW), Admission::Rejected);
    assert!(!stats.routable());
}

#[test]
fn probe_that_never_completes_is_reclaimed_after_another_window() {
    let stats = ReplicaStats::default();
    for _ in 0..5 {
        fail(&stats, Admission::Closed);
    }
    std::thread::sleep(WINDOW + Duration::from_millis(5));
    assert_eq!(stats.admit(WINDOW), Admission::Probe);
    // The probe is lost: never recorded.
    assert_eq!(stats.admit(WINDOW), Admission::Rejected);
    std::thread::sleep(WINDOW + Duration::from_millis(5));
    assert_eq!(stats.admit(WINDOW), Admission::Probe);
}

#[test]
fn exactly_one_probe_is_admitted_among_racing_threads() {
    // A probe holds the circuit for one window; past it a second probe
    // is rightly admitted. A window far longer than the race keeps a
    // descheduled thread (a loaded machine) from ending it.
    const WINDOW: Duration = Duration::from_millis(300);
    for _ in 0..5 {
        let stats = Arc::new(ReplicaStats::default());
        for _ in 0..5 {
            fail(&stats, Admission::Closed);
        }
        std::thread::sleep(WINDOW + Duration::from_millis(2));
        let barrier = Arc::new(Barrier::new(4));
        let probes: usize = (0..4)
            .map(|_| {
                let (stats, barrier) = (Arc::clone(&stats), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..100)
                        .filter(|_| stats.admit(WINDOW) == Admission::Probe)
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(probes, 1);
    }
}

#[test]
fn in_flight_guard_returns_count_even_on_panic() {
    let stats = Arc::new(ReplicaStats::default());
    let s = Arc::clone(&stats);
    let result = std::panic::catch_unwind(move || {
        let _guard = s.wait();
        assert_eq!(s.in_flight(), 1);
        s.hold(7);
        assert_eq!(s.in_flight(), 2);
        s.hold(0);
        panic!("daemon blew up");
    });
    assert!(result.is_err());
    assert_eq!(stats.in_flight(), 0);
}

fn timed(stats: &ReplicaStats, micros: u64, ok: bool, at_ms: u32) {
    let elapsed = Duration::from_micros(micros);
    stats.record(
        Admission::Closed,
        Some((elapsed, at_ms)),
        ok,
        Some(0.5),
        &settings(),
    );
}

#[test]
fn latency_starts_unmeasured_and_moves_fast_toward_a_slower_sample() {
    let stats = ReplicaStats::default();
    assert_eq!(stats.latency_at(0, decay()), 0.0);
    timed(&stats, 100, true, 0);
    assert_eq!(stats.latency_at(0, decay()), 100_000.0);
    // A slower sample moves it half way, counting at most twice the
    // estimate (300 µs counts as 200 µs)…
    timed(&stats, 300, true, 0);
    assert_eq!(stats.latency_at(0, decay()), 150_000.0);
    // …so a 10 ms stall moves it no further than 2 × 150 µs would.
    timed(&stats, 10_000, true, 0);
    assert_eq!(stats.latency_at(0, decay()), 225_000.0);
    // One under half of it moves it half way down (the peak was a
    // passing one); one at least half of it an eighth of the way.
    timed(&stats, 100, true, 0);
    assert_eq!(stats.latency_at(0, decay()), 162_500.0);
    timed(&stats, 120, true, 0);
    assert_eq!(stats.latency_at(0, decay()), 157_187.5);
    assert_eq!(stats.load_score(), 0.5);
}

#[test]
fn latency_fades_with_time_and_a_faded_replica_starts_from_there() {
    let stats = ReplicaStats::default();
    timed(&stats, 300, true, 0);
    // Read one time constant (10 s) later it has faded to 1/e…
    let faded = stats.latency_at(10_000, decay());
    assert!(
        (faded / 300_000.0 - (-1.0f32).exp()).abs() < 0.01,
        "{faded}"
    );
    // …and a sample taken long after starts from the faded value: a
    // replica slow once, fast again, regains a low estimate at once.
    timed(&stats, 30, true, 60_000);
    let now = stats.latency_at(60_000, decay());
    assert!(now < 35_000.0, "{now}");
}

#[test]
fn a_failure_counts_as_slow_however_fast() {
    let stats = ReplicaStats::default();
    timed(&stats, 30, true, 0);
    timed(&stats, 1, false, 0);
    let penalized = stats.latency_at(0, decay());
    assert!(
        penalized >= 0.5e6,
        "a fast failure counts as at least 1 ms: {penalized}"
    );
    // A fast success brings it down half way only; time fades it.
    timed(&stats, 30, true, 0);
    assert!(stats.latency_at(0, decay()) >= 0.25e6);
    assert!(stats.latency_at(60_000, decay()) < 2_000.0);
}
