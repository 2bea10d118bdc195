//! Live per-replica statistics: shared atomics the route path reads and
//! delivery writes, without locks.
//!
//! Packed in 48 bytes, what routes read first: a replica is small (a group of
//! 255 fits in 64 KiB), so the statistics are not padded to cache lines of
//! their own. The circuit, read by every route, changes rarely; the
//! counters change on every delivery, on the delivering thread.

use std::time::Duration;

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::now_ns;

/// Weight of a new latency sample in the EWMA, as a right shift: 1/8.
const EWMA_SHIFT: u32 = 3;

/// Weight of the error rate in the load score: a replica failing every event
/// scores as if it had 10 more events in flight.
const ERROR_PENALTY: f64 = 10.0;

/// Fixed-point scale of the load score: 1.0 is `LOAD_SCALE`.
const LOAD_SCALE: u64 = 1 << 16;

/// Largest finite load counted; a larger one saturates here.
const MAX_LOAD: f64 = (1u64 << 40) as f64;

/// What `+inf`, `NaN` and a panicking `load()` count as: more than any
/// finite load.
const UNBOUNDED_LOAD: f64 = 2.0 * MAX_LOAD;

/// Circuit state value of a closed circuit; any other value is the deadline
/// (nanoseconds on [`now_ns`]'s clock) of an open circuit or an in-flight probe,
/// with [`PROBING`] set for the latter.
const CLOSED: u64 = 0;
const PROBING: u64 = 1 << 63;

/// Live statistics of one replica, part of the replica and so shared by
/// every roster that lists it.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct ReplicaStats {
    /// Read by every route (see [`CLOSED`]).
    circuit: AtomicU64,
    /// Deliveries waiting for the daemon, which is busy with another.
    waiting: AtomicU32,
    /// The thread tag of the delivery holding the daemon, 0 when none. Only
    /// the holder writes it, and a thread only ever compares it with its own
    /// tag (to refuse a re-entrant delivery) or with 0 (to count in flight),
    /// so no other memory is ordered by it: a std atomic even under loom,
    /// where it would only add scheduling points.
    holder: std::sync::atomic::AtomicU32,
    /// Written by delivery, under the daemon's lock (one writer at a time).
    consecutive_failures: AtomicU32,
    latency_ewma_ns: AtomicU64,
    /// `load + ERROR_PENALTY × error_rate` in fixed point (see
    /// [`LOAD_SCALE`]), updated per event so a route adds the in-flight count
    /// and compares integers.
    load_score: AtomicU64,
    processed: AtomicU64,
    errors: AtomicU64,
}

/// A circuit breaker's state, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Circuit {
    Closed,
    Open,
    /// The window passed: the next delivery is (or a delivery is) the probe.
    HalfOpen,
}

/// Whether a delivery may go ahead, and if it is the circuit's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The circuit is closed.
    Closed,
    /// The circuit was open and this delivery is its one probe.
    Probe,
    /// The circuit is open (or another probe is in flight).
    Rejected,
}

/// Counts a delivery as waiting for the daemon until dropped, so a panic
/// cannot leak it.
#[derive(Debug)]
pub(crate) struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl ReplicaStats {
    /// Counts one delivery as waiting for the busy daemon until the guard
    /// drops (it then holds the daemon, see [`hold`](Self::hold)).
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(&self.waiting)
    }

    /// Records that the delivery of thread `tag` holds the daemon (0: none).
    #[inline]
    pub(crate) fn hold(&self, tag: u32) {
        self.holder.store(tag, std::sync::atomic::Ordering::Relaxed);
    }

    /// The thread tag of the delivery holding the daemon, 0 when none.
    #[inline]
    pub(crate) fn holder(&self) -> u32 {
        self.holder.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Deliveries in flight: the one the daemon processes, and those waiting
    /// for it. Counted without a read-modify-write on the common path (a
    /// delivery that finds the daemon free).
    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed) + u32::from(self.holder() != 0)
    }

    /// Latency EWMA in nanoseconds; 0 until the first measurement.
    #[inline]
    pub(crate) fn latency_ewma_ns(&self) -> u64 {
        self.latency_ewma_ns.load(Ordering::Relaxed)
    }

    /// `load + 10 × error_rate` as of the last processed event, times
    /// [`LOAD_SCALE`].
    #[inline]
    pub(crate) fn load_score(&self) -> u64 {
        self.load_score.load(Ordering::Relaxed)
    }

    /// What `LeastLoad` minimises: the load score plus one unit per delivery
    /// in flight, in fixed point.
    #[inline]
    pub(crate) fn load_cost(&self) -> u64 {
        self.load_score() + u64::from(self.in_flight()) * LOAD_SCALE
    }

    /// Events processed, succeeded or failed.
    pub(crate) fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    /// Events failed.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The circuit breaker's state now.
    pub(crate) fn circuit(&self) -> Circuit {
        let state = self.circuit.load(Ordering::Acquire);
        if state == CLOSED {
            Circuit::Closed
        } else if state & PROBING != 0 || window_passed(state) {
            Circuit::HalfOpen
        } else {
            Circuit::Open
        }
    }

    #[cfg(test)]
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Whether routing may pick this replica now: its circuit is closed, or the
    /// open window (or a stalled probe's window) has passed.
    /// Reads the clock only when the circuit is not closed.
    #[inline]
    pub(crate) fn routable(&self) -> bool {
        let state = self.circuit.load(Ordering::Acquire);
        state == CLOSED || window_passed(state)
    }

    /// Admits a delivery: always while closed; once the window has passed,
    /// exactly one caller wins the CAS and becomes the probe (reclaimed after
    /// another window if it never completes).
    pub(crate) fn admit(&self, window: Duration) -> Admission {
        let state = self.circuit.load(Ordering::Acquire);
        if state == CLOSED {
            return Admission::Closed;
        }
        let now = now_ns();
        if deadline(state) > now {
            return Admission::Rejected;
        }
        let next = PROBING | (now + window_ns(window)).min(!PROBING);
        match self
            .circuit
            .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Rejected,
        }
    }

    /// Records a processed event. Called with the daemon's lock held, so the
    /// outcome fields have a single writer at a time.
    /// `elapsed` is the measured latency, when this delivery was timed;
    /// `load` the daemon's load, when the strategy samples it.
    pub(crate) fn record(
        &self,
        admission: Admission,
        elapsed: Option<Duration>,
        ok: bool,
        load: Option<f64>,
        threshold: u32,
        window: Duration,
    ) {
        let processed = self.processed.load(Ordering::Relaxed) + 1;
        self.processed.store(processed, Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed) + u64::from(!ok);
        self.errors.store(errors, Ordering::Relaxed);
        if let Some(load) = load {
            let score = saturated(load) + ERROR_PENALTY * errors as f64 / processed as f64;
            let fixed = (score * LOAD_SCALE as f64) as u64;
            self.load_score.store(fixed, Ordering::Relaxed);
        }
        if let Some(elapsed) = elapsed {
            let sample = (elapsed.as_nanos() as u64).max(1);
            let old = self.latency_ewma_ns.load(Ordering::Relaxed);
            let ewma = if old == 0 {
                sample
            } else {
                // old + (sample - old) / 8, in signed arithmetic.
                (old as i64 + ((sample as i64 - old as i64) >> EWMA_SHIFT)).max(1) as u64
            };
            self.latency_ewma_ns.store(ewma, Ordering::Relaxed);
        }
        if ok {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            if admission == Admission::Probe {
                self.circuit.store(CLOSED, Ordering::Release);
            }
            return;
        }
        let failures = self.consecutive_failures.load(Ordering::Relaxed) + 1;
        self.consecutive_failures.store(failures, Ordering::Relaxed);
        if admission == Admission::Probe || failures >= threshold.max(1) {
            let until = (now_ns() + window_ns(window)).min(!PROBING);
            self.circuit.store(until, Ordering::Release);
        }
    }
}

/// A daemon's reported load as the score counts it: negative counts as 0,
/// a finite load saturates at [`MAX_LOAD`], and `+inf` and `NaN` (a load
/// that cannot be told, or a `load()` that panicked) count as
/// [`UNBOUNDED_LOAD`], more loaded than any finite load.
fn saturated(load: f64) -> f64 {
    if load.is_nan() || load == f64::INFINITY {
        UNBOUNDED_LOAD
    } else {
        load.clamp(0.0, MAX_LOAD)
    }
}

#[cold]
#[inline(never)]
fn window_passed(state: u64) -> bool {
    deadline(state) <= now_ns()
}

fn deadline(state: u64) -> u64 {
    state & !PROBING
}

fn window_ns(window: Duration) -> u64 {
    u64::try_from(window.as_nanos()).unwrap_or(u64::MAX >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    const WINDOW: Duration = Duration::from_millis(40);

    fn fail(stats: &ReplicaStats, admission: Admission) {
        stats.record(
            admission,
            Some(Duration::from_micros(5)),
            false,
            Some(0.0),
            5,
            WINDOW,
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
            Some(Duration::from_micros(5)),
            true,
            Some(0.0),
            5,
            WINDOW,
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
            Some(Duration::from_micros(5)),
            true,
            Some(0.0),
            5,
            WINDOW,
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
        for _ in 0..20 {
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

    #[test]
    fn latency_ewma_starts_unmeasured_and_follows_samples() {
        let stats = ReplicaStats::default();
        assert_eq!(stats.latency_ewma_ns(), 0);
        stats.record(
            Admission::Closed,
            Some(Duration::from_micros(100)),
            true,
            Some(0.5),
            5,
            WINDOW,
        );
        assert_eq!(stats.latency_ewma_ns(), 100_000);
        for _ in 0..50 {
            stats.record(
                Admission::Closed,
                Some(Duration::from_micros(10)),
                true,
                Some(0.5),
                5,
                WINDOW,
            );
        }
        assert!(
            stats.latency_ewma_ns() < 12_000,
            "{}",
            stats.latency_ewma_ns()
        );
        assert_eq!(stats.load_score(), LOAD_SCALE / 2);
    }
}
