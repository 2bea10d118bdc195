//! What only the models need: running a closure under loom. The daemons,
//! runtimes and configs come from `replica_router_testkit::support`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Runs `f` under loom in every interleaving loom explores, and prints how
/// many that was. Preemptions are bounded by `LOOM_MAX_PREEMPTIONS`, 2 when
/// it is unset (unbounded exploration of these models does not finish).
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} executions (preemption bound {:?})",
        executions.load(Ordering::Relaxed),
        builder.preemption_bound
    );
}
