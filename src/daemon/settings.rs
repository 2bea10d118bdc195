//! What every replica of a group shares: the user's settings, what the
//! group's strategy needs measured on each delivery, and the few counters
//! kept per group rather than per replica.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::DaemonHostConfig;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HostSettings {
    pub(crate) config: DaemonHostConfig,
    /// Latency is measured on one delivery in this many (a power of two):
    /// on every one for the strategies that route on latency, on a sample
    /// otherwise (for `ReplicaGroup::stats`), sparing two clock reads.
    pub(crate) latency_every: u64,
    /// Whether a delivery samples `MeshDaemon::load()` (for `LeastLoad`).
    pub(crate) samples_load: bool,
    /// How fast latency estimates fade (`config.latency_decay`).
    pub(crate) decay: Decay,
    /// Deliveries in flight over the whole group, kept only for
    /// bounded-load consistent hashing (`config.hash_balance_factor`).
    total_in_flight: AtomicU32,
    /// Replicas of the group whose circuit is not closed.
    open_circuits: AtomicU32,
    /// Healthy replicas in the last published roster (set by the writer).
    healthy: AtomicU32,
    /// Times the open circuits went past `config.max_ejection_percent`.
    ejection_panics: AtomicU64,
}

impl HostSettings {
    pub(crate) fn new(
        config: DaemonHostConfig,
        routes_on_latency: bool,
        routes_on_load: bool,
    ) -> HostSettings {
        HostSettings {
            decay: Decay::over(config.latency_decay),
            config,
            latency_every: if routes_on_latency { 1 } else { 16 },
            samples_load: routes_on_load,
            total_in_flight: AtomicU32::new(0),
            open_circuits: AtomicU32::new(0),
            healthy: AtomicU32::new(0),
            ejection_panics: AtomicU64::new(0),
        }
    }

    /// Whether the group counts its deliveries in flight as a whole.
    #[inline]
    pub(crate) fn tracks_total(&self) -> bool {
        self.config.hash_balance_factor.is_some()
    }

    /// Deliveries in flight over the group (0 unless it tracks them).
    #[inline]
    pub(crate) fn total_in_flight(&self) -> u32 {
        self.total_in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> &AtomicU32 {
        &self.total_in_flight
    }

    /// Records the healthy count of the roster just published.
    pub(crate) fn set_healthy(&self, healthy: u32) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// The most open circuits routing honours: `max_ejection_percent` of the
    /// healthy replicas, and at least one.
    fn ejection_allowance(&self) -> u32 {
        let healthy = self.healthy.load(Ordering::Relaxed);
        (healthy * u32::from(self.config.max_ejection_percent) / 100).max(1)
    }

    /// Whether more circuits are open than routing may honour: routes then
    /// ignore circuits (a panic threshold). Read only when a route meets an
    /// open circuit.
    #[cold]
    pub(crate) fn ejection_overflowing(&self) -> bool {
        self.config.max_ejection_percent < 100
            && self.open_circuits.load(Ordering::Relaxed) > self.ejection_allowance()
    }

    /// Counts a circuit that opened; the first open one past the allowance
    /// is a panic, counted and logged.
    pub(crate) fn circuit_opened(&self, origin_hash: u64) {
        let open = self.open_circuits.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.max_ejection_percent < 100 && open == self.ejection_allowance() + 1 {
            self.ejection_panics.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                origin_hash = %format_args!("{origin_hash:#018x}"),
                open,
                max_ejection_percent = self.config.max_ejection_percent,
                "open circuits past max_ejection_percent: routing ignores circuits until some close"
            );
        }
    }

    /// Counts a circuit that closed (or whose replica left while open).
    pub(crate) fn circuit_closed(&self) {
        let _ = self
            .open_circuits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Times the open circuits went past the allowance.
    pub(crate) fn ejection_panics(&self) -> u64 {
        self.ejection_panics.load(Ordering::Relaxed)
    }
}

/// How fast a latency estimate fades: the weight a sample keeps after some
/// milliseconds, `e^(-ms / τ)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decay {
    per_ms: f32,
}

impl Default for Decay {
    fn default() -> Self {
        Decay::over(super::DaemonHostConfig::default().latency_decay)
    }
}

impl Decay {
    /// The decay of time constant `tau` (at least a millisecond).
    pub(crate) fn over(tau: std::time::Duration) -> Decay {
        Decay {
            per_ms: 1.0 / (tau.as_secs_f32() * 1000.0).max(1.0),
        }
    }

    /// `e^(-elapsed_ms / τ)`.
    #[inline]
    pub(crate) fn weight(self, elapsed_ms: u32) -> f32 {
        exp_neg(elapsed_ms as f32 * self.per_ms)
    }
}

/// `e^(-x)` for `x >= 0`, within 0.3%: a power of two from the exponent
/// bits times a polynomial for the fraction. A route computes two, so
/// `f32::exp`'s cost matters.
#[inline]
fn exp_neg(x: f32) -> f32 {
    // e^-x = 2^-y with y = x·log2(e) = i + f.
    let y = x * std::f32::consts::LOG2_E;
    if y.is_nan() {
        return 1.0;
    }
    if y >= 120.0 {
        return 0.0;
    }
    let i = y as u32;
    let f = y - i as f32;
    // 2^-f on [0, 1): e^(-f·ln 2), Taylor to the fourth order.
    let t = f * std::f32::consts::LN_2;
    let two_to_minus_f = 1.0 - t * (1.0 - t * (0.5 - t * (1.0 / 6.0 - t / 24.0)));
    f32::from_bits((127 - i) << 23) * two_to_minus_f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_close_to_exp() {
        for k in 0..2_000 {
            let x = k as f32 / 20.0;
            let (fast, exact) = (exp_neg(x), (-x).exp());
            assert!(
                (fast - exact).abs() <= exact * 0.003 + 1e-30,
                "{x}: {fast} vs {exact}"
            );
        }
        assert_eq!(exp_neg(500.0), 0.0);
        assert_eq!(exp_neg(0.0), 1.0);
    }

    #[test]
    fn decay_weight_is_one_over_e_after_tau() {
        let d = Decay::over(std::time::Duration::from_secs(10));
        assert!((d.weight(10_000) - (-1.0f32).exp()).abs() < 0.003);
        assert_eq!(d.weight(0), 1.0);
    }
}
