//! The exact-minimum strategies: scan the candidates and take the lowest
//! score. The scan starts at a rotating position and only a strictly lower
//! score replaces the best so far, so equal members take turns instead of
//! the first one always winning.
//!
//! O(n) in the member count: at 255 members a scan reads 255 stats lines.

use crate::roster::Hot;

/// Weight of the error rate in [`load_score`]: a replica failing every event
/// scores as if it had 10 more events in flight.
const ERROR_PENALTY: f64 = 10.0;

/// The admissible member of `set` with the lowest `score`; ties rotate.
#[inline]
pub(super) fn lowest<'r, K: PartialOrd>(
    set: &'r [Hot],
    cursor: &mut usize,
    admit: impl Fn(&Hot) -> bool,
    score: impl Fn(&Hot) -> K,
) -> Option<&'r Hot> {
    let n = set.len();
    if n == 0 {
        return None;
    }
    let start = if *cursor < n { *cursor } else { 0 };
    *cursor = start + 1;
    let (before, after) = set.split_at(start);
    let mut best: Option<(&Hot, K)> = None;
    for hot in after.iter().chain(before) {
        if !admit(hot) {
            continue;
        }
        let s = score(hot);
        if best.as_ref().is_none_or(|(_, b)| s < *b) {
            best = Some((hot, s));
        }
    }
    best.map(|(hot, _)| hot)
}

/// `LeastConnections`: deliveries in flight.
#[inline]
pub(super) fn connections(hot: &Hot) -> u32 {
    hot.stats.in_flight()
}

/// `WeightedLeastConnections`: (in flight + 1) ÷ weight, so that among idle
/// members the heavier is preferred; weight 0 is never preferred.
#[inline]
pub(super) fn weighted_connections(hot: &Hot) -> f64 {
    if hot.weight == 0 {
        return f64::INFINITY;
    }
    f64::from(hot.stats.in_flight() + 1) / f64::from(hot.weight)
}

/// `LeastLatency`: the latency EWMA, where 0 means "not measured yet", so
/// members without a measurement are tried first.
#[inline]
pub(super) fn latency(hot: &Hot) -> u64 {
    hot.stats.latency_ewma_ns()
}

/// `LeastLoad`: `load + in_flight + 10 × error_rate`, where `load` is the
/// daemon's own `MeshDaemon::load()` sampled after its last event,
/// `in_flight` the deliveries under way, and `error_rate` the fraction of
/// its processed events that failed.
#[inline]
pub(super) fn load_score(hot: &Hot) -> f64 {
    let stats = &hot.stats;
    let processed = stats.processed();
    let error_rate = if processed == 0 {
        0.0
    } else {
        stats.errors() as f64 / processed as f64
    };
    stats.load() + f64::from(stats.in_flight()) + ERROR_PENALTY * error_rate
}
