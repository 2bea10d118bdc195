//! The chaos thread: a schedule of node failures and recoveries, a flapping
//! node, rescales and new nodes, drawn from `--seed`.
//!
//! The schedule runs in ticks. What happens on a tick depends only on the
//! seed and on the schedule's own record of which nodes are down, never on
//! timing, and placement is deterministic, so the same seed gives the same
//! actions and the same failovers on every run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use replica_router::*;

use crate::workload::Rng;

/// Time between two chaos ticks.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// The flapping node fails on every `FLAP_PERIOD`-th tick and recovers half a
/// period later: five failures a second.
const FLAP_PERIOD: u64 = 4;

/// The shape of the schedule.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) ticks: u64,
    pub(crate) nodes: u64,
    pub(crate) zones: u64,
    /// The node that fails and recovers every few ticks (`None` with one node).
    pub(crate) flapper: Option<u64>,
    /// At most this many other nodes are down at once.
    pub(crate) max_down: usize,
    /// Nodes added during the run, evenly spaced.
    pub(crate) add_nodes: u64,
    /// Rescales go to a count in this range.
    pub(crate) scale: (u8, u8),
}

/// What a point on the plot marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkKind {
    Failed,
    Recovered,
    FlapFailed,
    FlapRecovered,
    Added,
}

/// One chaos action, for the plot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    /// Seconds since the start.
    pub(crate) t: f64,
    pub(crate) kind: MarkKind,
    pub(crate) node: u64,
}

/// Counters the progress bar reads while the schedule runs.
#[derive(Debug, Default)]
pub(crate) struct ChaosLive {
    /// Re-placements so far, every group's term summed.
    pub(crate) failovers: AtomicU64,
    pub(crate) nodes_down: AtomicU64,
    pub(crate) nodes: AtomicU64,
}

/// What the schedule did.
#[derive(Debug, Default)]
pub(crate) struct ChaosReport {
    pub(crate) marks: Vec<Mark>,
    /// Node failures, the flapping node's included.
    pub(crate) nodes_failed: u64,
    pub(crate) flaps: u64,
    pub(crate) nodes_recovered: u64,
    pub(crate) nodes_added: u64,
    /// Replicas `node_failed` re-placed on another node (failovers also
    /// happen when a rescale or a new node heals a stuck member).
    pub(crate) replaced: u64,
    pub(crate) scale_events: u64,
    /// Rescales refused (not enough eligible nodes while many were down).
    pub(crate) scale_refused: u64,
    /// Calls the runtime refused, other than rescales.
    pub(crate) errors: u64,
    /// Ticks run; fewer than planned only if the runtime could not keep up.
    pub(crate) ticks: u64,
}

/// Runs the schedule from `started` until its last tick.
pub(crate) fn run(
    plan: &Plan,
    runtime: &DaemonRuntime,
    groups: &[Arc<ReplicaGroup>],
    started: Instant,
    live: &ChaosLive,
) -> ChaosReport {
    let mut rng = Rng::new(plan.seed ^ 0xc4a0_5c4a_05c4_a05c);
    let mut report = ChaosReport::default();
    let mut next_node = plan.nodes;
    let mut alive: Vec<u64> = (0..plan.nodes)
        .filter(|&n| Some(n) != plan.flapper)
        .collect();
    // (node, tick it recovers on)
    let mut down: Vec<(u64, u64)> = Vec::new();
    let mut flapper_down = false;
    let mut marks = Vec::new();
    live.nodes.store(plan.nodes, Ordering::Relaxed);
    let give_up = started + TICK * (plan.ticks as u32 + 20);
    for tick in 1..plan.ticks {
        let due = started + TICK * tick as u32;
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        } else if now > give_up {
            break;
        }
        report.ticks = tick;
        let t = started.elapsed().as_secs_f64();
        let mut mark = |kind, node| marks.push(Mark { t, kind, node });

        if let Some(node) = plan.flapper {
            let phase = tick % FLAP_PERIOD;
            if phase == 0 && !flapper_down {
                match runtime.node_failed(node) {
                    Ok(moved) => {
                        flapper_down = true;
                        mark(MarkKind::FlapFailed, node);
                        report.flaps += 1;
                        report.nodes_failed += 1;
                        report.replaced += moved as u64;
                    }
                    Err(_) => report.errors += 1,
                }
            } else if phase == FLAP_PERIOD / 2 && flapper_down {
                match runtime.node_recovered(node) {
                    Ok(_) => {
                        flapper_down = false;
                        mark(MarkKind::FlapRecovered, node);
                        report.nodes_recovered += 1;
                    }
                    Err(_) => report.errors += 1,
                }
            }
        }

        while let Some(i) = down.iter().position(|&(_, at)| at <= tick) {
            let (node, _) = down.swap_remove(i);
            match runtime.node_recovered(node) {
                Ok(_) => {
                    mark(MarkKind::Recovered, node);
                    report.nodes_recovered += 1;
                }
                Err(_) => report.errors += 1,
            }
            alive.push(node);
        }

        // About 2.5 failures a second, each down for 0.5 to 2 seconds.
        if rng.below(8) == 0 && down.len() < plan.max_down && !alive.is_empty() {
            let node = alive.swap_remove(rng.below(alive.len() as u64) as usize);
            let back = tick + 10 + rng.below(31);
            match runtime.node_failed(node) {
                Ok(moved) => {
                    mark(MarkKind::Failed, node);
                    report.nodes_failed += 1;
                    report.replaced += moved as u64;
                    down.push((node, back));
                }
                Err(_) => {
                    report.errors += 1;
                    alive.push(node);
                }
            }
        }

        // About seven rescales a second (ten draws, a third of them to the
        // size the group already has).
        if rng.below(2) == 0 && !groups.is_empty() {
            let group = &groups[rng.below(groups.len() as u64) as usize];
            let (low, high) = plan.scale;
            let to = low + rng.below(u64::from(high - low) + 1) as u8;
            if to != group.replica_count() {
                match group.scale_to(to) {
                    Ok(()) => report.scale_events += 1,
                    Err(_) => report.scale_refused += 1,
                }
            }
        }

        // New nodes, evenly spread over the run.
        let every = (plan.ticks / (plan.add_nodes + 1)).max(1);
        if report.nodes_added < plan.add_nodes && tick % every == 0 {
            let node = next_node;
            let zone = format!("zone-{}", node % plan.zones);
            match runtime.add_node(NodeInfo::new(node).with_zone(&zone)) {
                Ok(()) => {
                    next_node += 1;
                    mark(MarkKind::Added, node);
                    report.nodes_added += 1;
                    alive.push(node);
                }
                Err(_) => report.errors += 1,
            }
        }

        let failovers = groups.iter().map(|g| g.term()).sum();
        live.failovers.store(failovers, Ordering::Relaxed);
        let nodes_down = down.len() as u64 + u64::from(flapper_down);
        live.nodes_down.store(nodes_down, Ordering::Relaxed);
        live.nodes.store(next_node, Ordering::Relaxed);
    }
    report.marks = marks;
    report
}
