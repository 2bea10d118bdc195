//! Regression (issue 18, adversarial testing): `LeastLoad` treated a
//! `load()` of `+inf` as idle. A replica reporting infinity got all 3,000 of
//! 3,000 routes while one reporting 1e300 got none, because non-finite loads
//! were mapped to 0 before the saturation step. Now `+inf`, `NaN` and a
//! panicking `load()` count as the most loaded, and negative loads as 0.

use std::collections::BTreeMap;

use bytes::Bytes;
use replica_router::*;
use replica_router_testkit::support::*;

/// Echoes and reports a load chosen by its node (by the order of creation).
struct Loaded(f64);

impl MeshDaemon for Loaded {
    fn name(&self) -> &str {
        "loaded"
    }
    fn process(&mut self, e: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![e.payload().clone()])
    }
    fn load(&self) -> f64 {
        if self.0.is_sign_negative() && self.0 == -7.0 {
            std::panic::panic_any(DELIBERATE_PANIC)
        }
        self.0
    }
}

/// The share of 3,000 routes each load gets (by its position in `loads`),
/// after every replica reported it.
fn shares(loads: &[f64]) -> BTreeMap<usize, usize> {
    let rt = runtime(loads.len() as u64, 1);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(loads.to_vec()));
    let q = std::sync::Arc::clone(&queue);
    rt.register_factory("loaded", move || {
        Box::new(Loaded(q.lock().unwrap().remove(0)))
    })
    .unwrap();
    let group = ReplicaGroup::spawn(
        &rt,
        "loaded",
        config(loads.len() as u8, 9, Strategy::LeastLoad),
    )
    .unwrap();
    // Replica i was created i-th; one delivery each samples its load.
    let label: BTreeMap<u64, usize> = group
        .replicas()
        .iter()
        .map(|m| (m.origin_hash, m.index as usize))
        .collect();
    for m in group.replicas() {
        rt.deliver(m.origin_hash, &Event::new("sample")).unwrap();
    }
    let mut counts = BTreeMap::new();
    for _ in 0..3_000 {
        let origin = group.route_event(&RequestContext::new()).unwrap();
        *counts.entry(label[&origin]).or_insert(0) += 1;
    }
    rt.shutdown();
    counts
}

#[test]
fn infinite_load_counts_as_the_most_loaded() {
    let counts = shares(&[f64::INFINITY, 1e300]);
    assert_eq!(
        counts,
        BTreeMap::from([(1, 3_000)]),
        "1e300 is less loaded than +inf"
    );
}

#[test]
fn nan_and_a_panicking_load_count_as_the_most_loaded_and_negative_as_zero() {
    // -3.0 counts as 0: the least loaded, so it takes every route.
    let counts = shares(&[f64::NAN, -7.0, -3.0, 2.0]);
    assert_eq!(counts, BTreeMap::from([(2, 3_000)]));
    // NaN and a panicking load() lose even to a huge finite load.
    let counts = shares(&[f64::NAN, -7.0, 1e12]);
    assert_eq!(counts, BTreeMap::from([(2, 3_000)]));
}
