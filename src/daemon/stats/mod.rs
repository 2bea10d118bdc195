//! Live per-replica statistics: shared atomics the route path reads and
//! delivery writes, without locks.
//!
//! Packed in 48 bytes (`repr(C)`, no padding), what routes read first: a replica is small (a group of
//! 255 fits in 64 KiB), so the statistics are not padded to cache lines of
//! their own. The circuit, read by every route, changes rarely; the
//! counters change on every delivery, on the delivering thread.

use std::time::Duration;

use super::settings::{Decay, HostSettings};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::now_ns;

/// What a failed delivery counts as, at the least, in the latency
/// estimate: a failure is slow, however fast it came back, so a replica that
/// fails fast repels traffic instead of attracting it. A failure counts as
/// eight times its own latency or the replica's current estimate, whichever
/// is more, and at least 1 ms.
const FAILURE_FLOOR_NS: f32 = 1e6;
const FAILURE_FACTOR: f32 = 8.0;
/// The most a successful sample counts for, as a multiple of the estimate:
/// one stall moves a replica's estimate by half at most, which the routes
/// still count as a tie with its peers (see `least::clearly_cheaper`).
const OUTLIER_FACTOR: f32 = 2.0;
/// How far a slower sample moves the latency estimate: half way (peaks
/// count fast).
const PEAK_WEIGHT: f32 = 0.5;
/// How far a faster sample (at least half the estimate) moves it: an
/// eighth of the way.
const EASE_WEIGHT: f32 = 0.125;
/// The largest estimate kept (a minute): a penalty never grows past it.
const MAX_LATENCY_NS: f32 = 60e9;

/// Weight of the error rate in the load score: a replica failing every event
/// scores as if it had 10 more events in flight.
const ERROR_PENALTY: f64 = 10.0;

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
    /// `load + ERROR_PENALTY × error_rate`, an `f32` (its bits), updated per
    /// event so that a route only adds the in-flight count.
    load_score: AtomicU32,
    /// The peak-sensitive latency estimate (an `f32` of nanoseconds, 0 before
    /// any measurement) in the high half, and the coarse millisecond it was
    /// last updated at in the low half: one word, so a route reads both at
    /// once.
    latency: AtomicU64,
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

    /// The latency estimate at coarse millisecond `now_ms`, in nanoseconds:
    /// the last estimate, faded by the time since it was updated (so a
    /// replica that was slow once is tried again). 0 before any measurement.
    #[inline]
    pub(crate) fn latency_at(&self, now_ms: u32, decay: Decay) -> f32 {
        let (estimate, at) = self.latency();
        estimate * decay.weight(now_ms.wrapping_sub(at))
    }

    /// The latency estimate as last updated, in nanoseconds, and when, on
    /// the coarse clock (0 and 0 before any measurement).
    #[inline]
    pub(crate) fn latency(&self) -> (f32, u32) {
        unpack(self.latency.load(Ordering::Relaxed))
    }

    /// `load + 10 × error_rate` as of the last processed event.
    #[inline]
    pub(crate) fn load_score(&self) -> f32 {
        f32::from_bits(self.load_score.load(Ordering::Relaxed))
    }

    /// What `LeastLoad` minimises: the load score plus one unit per delivery
    /// in flight.
    #[inline]
    pub(crate) fn load_cost(&self) -> f32 {
        self.load_score() + self.in_flight() as f32
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
    /// outcome fields have a single writer at a time. `timing` is the
    /// measured latency and the coarse millisecond it ended at, when this
    /// delivery was timed; `load` the daemon's load, when the strategy
    /// samples it. Returns how the circuit changed, if it did.
    pub(crate) fn record(
        &self,
        admission: Admission,
        timing: Option<(Duration, u32)>,
        ok: bool,
        load: Option<f64>,
        settings: &HostSettings,
    ) -> Option<CircuitChange> {
        let threshold = settings.config.circuit_failure_threshold;
        let window = settings.config.circuit_recovery;
        let processed = self.processed.load(Ordering::Relaxed) + 1;
        self.processed.store(processed, Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed) + u64::from(!ok);
        self.errors.store(errors, Ordering::Relaxed);
        if let Some(load) = load {
            let score = saturated(load) + ERROR_PENALTY * errors as f64 / processed as f64;
            self.load_score
                .store((score as f32).to_bits(), Ordering::Relaxed);
        }
        if let Some((elapsed, now_ms)) = timing {
            self.observe_latency(elapsed, ok, now_ms, settings.decay);
        }
        if ok {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            if admission == Admission::Probe {
                self.circuit.store(CLOSED, Ordering::Release);
                return Some(CircuitChange::Closed);
            }
            return None;
        }
        let failures = self.consecutive_failures.load(Ordering::Relaxed) + 1;
        self.consecutive_failures.store(failures, Ordering::Relaxed);
        if admission == Admission::Probe || failures >= threshold.max(1) {
            let was_closed = self.circuit.load(Ordering::Relaxed) == CLOSED;
            let until = (now_ns() + window_ns(window)).min(!PROBING);
            self.circuit.store(until, Ordering::Release);
            if was_closed {
                return Some(CircuitChange::Opened);
            }
        }
        None
    }

    /// Folds one latency sample into the estimate, peak-sensitive: the
    /// estimate first fades by the time since its last sample (so a replica
    /// that was not picked for a while starts from what it looks like now),
    /// then moves half way to a slower sample, or to one under half of it,
    /// and an eighth of the way to a faster one. A failure counts as slow
    /// (see [`FAILURE_FLOOR_NS`]).
    fn observe_latency(&self, elapsed: Duration, ok: bool, now_ms: u32, decay: Decay) {
        let (estimate, at) = unpack(self.latency.load(Ordering::Relaxed));
        let faded = estimate * decay.weight(now_ms.wrapping_sub(at));
        let measured = (elapsed.as_nanos() as f32).max(1.0);
        let sample = if ok {
            // A success far slower than the estimate counts as at most
            // OUTLIER_FACTOR times it: a lasting slowdown shows within a few
            // samples, a passing stall (the thread preempted, a pause) does
            // not make a fast replica look slower than a slow one.
            if faded > 0.0 {
                measured.min(faded * OUTLIER_FACTOR)
            } else {
                measured
            }
        } else {
            (measured * FAILURE_FACTOR)
                .max(faded * FAILURE_FACTOR)
                .max(FAILURE_FLOOR_NS)
        }
        .min(MAX_LATENCY_NS);
        let next = if faded <= 0.0 {
            sample
        } else if sample > faded || sample * 2.0 < faded {
            // A slower sample, or one less than half the estimate (the peak
            // it remembers was a passing one): half way.
            faded + (sample - faded) * PEAK_WEIGHT
        } else {
            faded + (sample - faded) * EASE_WEIGHT
        };
        self.latency.store(pack(next, now_ms), Ordering::Relaxed);
    }
}

/// How a delivery changed its replica's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CircuitChange {
    /// It was closed and opened.
    Opened,
    /// Its probe succeeded and closed it.
    Closed,
}

fn pack(estimate_ns: f32, at_ms: u32) -> u64 {
    u64::from(estimate_ns.to_bits()) << 32 | u64::from(at_ms)
}

fn unpack(word: u64) -> (f32, u32) {
    (f32::from_bits((word >> 32) as u32), word as u32)
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
mod tests;
