//! The harness's timeline and its waits.

use std::thread;
use std::time::{Duration, Instant};

use replica_router::cluster::ClusterRuntime;

use crate::node::NodeProcess;

/// Prints timeline lines, relative to the start.
pub(crate) struct Timeline {
    pub(crate) start: Instant,
    pub(crate) quiet: bool,
}

impl Timeline {
    pub(crate) fn say(&self, what: impl AsRef<str>) {
        if !self.quiet {
            println!(
                "{:>8.3}s  {}",
                self.start.elapsed().as_secs_f64(),
                what.as_ref()
            );
        }
    }
}

/// Waits until `check` holds or `limit` passes; the time it took, if it held.
pub(crate) fn until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether every process, the coordinator included, applied `revision`
/// and holds the coordinator's digest at the same revision.
pub(crate) fn identical_at(
    observer: &ClusterRuntime,
    nodes: &[NodeProcess],
    revision: i64,
) -> bool {
    let mine = observer.status();
    mine.applied_revision >= revision
        && nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.revision == mine.applied_revision && s.digest == mine.digest)
        })
}

/// Milliseconds of a duration.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}
