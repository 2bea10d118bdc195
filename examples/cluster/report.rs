//! The harness's timeline and its waits.

use std::thread;
use std::time::{Duration, Instant};

use replica_router::cluster::{ClusterOptions, ClusterRuntime};

use crate::node::NodeProcess;
use crate::{load, register};

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

/// A new observer's join time, and whether it then holds the rosters
/// `observer` holds at the same revision.
pub(crate) fn timed_join(
    options: &ClusterOptions,
    observer: &ClusterRuntime,
) -> Result<(Duration, bool), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let joiner = ClusterRuntime::observe(options.clone(), register)?;
    let took = started.elapsed();
    let now = joiner.etcd_revision()?;
    let same = until(Duration::from_secs(10), || {
        let (a, b) = (joiner.status(), observer.status());
        a.applied_revision >= now
            && a.applied_revision == b.applied_revision
            && a.digest == b.digest
    })
    .is_some();
    Ok((
        took,
        same && joiner.status().feed.checkpoint_mismatches == 0,
    ))
}

/// Compacts etcd keeping `keep` revisions, as its revision auto-compaction
/// does (every five minutes; at once here).
pub(crate) fn compact(endpoint: &str, keep: i64) -> Result<i64, Box<dyn std::error::Error>> {
    let endpoint = endpoint.to_owned();
    load::tokio().block_on(async move {
        let mut c = etcd_client::Client::connect([endpoint], None).await?;
        let now = c.get("/", None).await?.header().map_or(0, |h| h.revision());
        let at = (now - keep).max(1);
        c.compact(at, None).await?;
        Ok(at)
    })
}
