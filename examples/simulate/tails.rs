//! The tails phase (`--tails-events`): per strategy, a group of four
//! replicas on four nodes, one of them on a node ten times slower than the
//! others; then the same with another replica that fails every other event
//! fast; and the dispatch latency each costs, against the same groups with
//! every replica fast.
//! The daemons are in `spinner.rs`.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use replica_router::*;

use crate::scrape::Recording;
use crate::spinner::{self, Board, Role, Spinner, SERVED_BY, UNSEATED};

/// The three runs: the same groups, placed alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    AllFast,
    Slow,
    SlowAndFlaky,
}

impl Scenario {
    /// The daemon kind, which also labels the scenario's metrics.
    fn kind(self) -> &'static str {
        match self {
            Scenario::AllFast => "all-fast",
            Scenario::Slow => "slow",
            Scenario::SlowAndFlaky => "slow-flaky",
        }
    }

    /// Replica `m`'s role, where `flaky` is the index of the flaky one.
    fn role(self, m: &MemberInfo, flaky: Option<u8>) -> Role {
        match self {
            Scenario::AllFast => Role::Fast,
            Scenario::Slow | Scenario::SlowAndFlaky if m.node_id == SLOW_NODE => Role::Slow,
            Scenario::Slow => Role::Fast,
            Scenario::SlowAndFlaky if Some(m.index) == flaky => Role::Flaky,
            Scenario::SlowAndFlaky => Role::Fast,
        }
    }
}

/// Which replica is the flaky one (`--tails-flaky`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flaky {
    /// The lowest index off the slow node.
    Auto,
    /// None: the slow node alone.
    Off,
    Index(u8),
}

impl Flaky {
    /// `--tails-flaky`'s parser: `auto`, `none` or a replica index.
    pub(crate) fn parse(text: &str) -> Result<Flaky, String> {
        match text {
            "auto" => Ok(Flaky::Auto),
            "none" => Ok(Flaky::Off),
            _ => match text.parse::<u8>() {
                Ok(i) if u64::from(i) < NODES => Ok(Flaky::Index(i)),
                _ => Err(format!(
                    "expected auto, none or a replica index below {NODES}"
                )),
            },
        }
    }

    /// The flaky replica's index among `members`.
    fn pick(self, members: &[MemberInfo]) -> Result<Option<u8>, String> {
        let off_slow = |m: &&MemberInfo| m.node_id != SLOW_NODE;
        match self {
            Flaky::Auto => Ok(members.iter().find(off_slow).map(|m| m.index)),
            Flaky::Off => Ok(None),
            Flaky::Index(i) => match members.iter().find(|m| m.index == i) {
                Some(m) if off_slow(&m) => Ok(Some(i)),
                Some(_) => Err(format!(
                    "--tails-flaky {i}: replica {i} is on the slow node"
                )),
                None => Err(format!("--tails-flaky {i}: no replica {i}")),
            },
        }
    }
}

/// The phase's shape.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Events dispatched per strategy and scenario, unless the run's time
    /// is up first (see [`TIME_PER_EVENT`]).
    pub(crate) events: u64,
    pub(crate) threads: usize,
    pub(crate) seed: u64,
    /// Record the replicas' statistics for `--metrics-addr` as the phase runs.
    pub(crate) record_metrics: bool,
    pub(crate) timer_ns: u64,
    pub(crate) flaky: Flaky,
}

/// A run stops after this much time per planned event, its events
/// dispatched or not: 1.6 times what round robin (the slowest here, 31 µs
/// an event over two threads) needs on an idle machine, so the phase stays
/// within about 5 s at the default even on a busy machine.
pub(crate) const TIME_PER_EVENT: Duration = Duration::from_micros(50);

/// One strategy in one scenario.
pub(crate) struct Run {
    /// `Router::dispatch` times of every event.
    pub(crate) dispatch_ns: Histogram<u64>,
    /// The same, of the events a fast replica processed: what the machine
    /// (preemption) and waits for a busy daemon add, with no slow replica
    /// involved.
    pub(crate) fast_ns: Histogram<u64>,
    pub(crate) dispatched: u64,
    pub(crate) ok: u64,
    /// Processed by a daemon that returned an error.
    pub(crate) failed: u64,
    /// Returned unprocessed.
    pub(crate) rejected: u64,
    /// Events each replica processed (by index), as the dispatching threads
    /// saw it, and (ok, failed) as its daemon counted.
    pub(crate) served: Vec<u64>,
    pub(crate) processed: Vec<(u64, u64)>,
    pub(crate) roles: Vec<Role>,
    pub(crate) seconds: f64,
}

impl Run {
    fn new(replicas: usize) -> Run {
        let histogram = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
        Run {
            dispatch_ns: histogram(),
            fast_ns: histogram(),
            dispatched: 0,
            ok: 0,
            failed: 0,
            rejected: 0,
            served: vec![0; replicas],
            processed: Vec::new(),
            roles: Vec::new(),
            seconds: 0.0,
        }
    }

    fn merge(&mut self, other: &Run) {
        self.dispatch_ns
            .add(&other.dispatch_ns)
            .expect("same bounds");
        self.fast_ns.add(&other.fast_ns).expect("same bounds");
        self.dispatched += other.dispatched;
        self.ok += other.ok;
        self.failed += other.failed;
        self.rejected += other.rejected;
        for (a, b) in self.served.iter_mut().zip(&other.served) {
            *a += b;
        }
    }

    /// The share of processed events that went to the replica in `role`.
    pub(crate) fn share(&self, role: Role) -> Option<f64> {
        let total: u64 = self.served.iter().sum();
        let of: u64 = (self.roles.iter().zip(&self.served))
            .filter(|(r, _)| **r == role)
            .map(|(_, n)| n)
            .sum();
        (total > 0 && self.roles.contains(&role)).then(|| of as f64 / total as f64)
    }

    /// Events without an outcome, or whose outcome the daemons' own counts
    /// do not bear out (per replica): 0 when all is well.
    pub(crate) fn unaccounted(&self) -> u64 {
        let outcomes = self.ok + self.failed + self.rejected;
        let (ok, failed) = (self.processed.iter()).fold((0, 0), |(a, b), (ok, f)| (a + ok, b + f));
        let per_replica: u64 = (self.served.iter().zip(&self.processed))
            .map(|(n, (ok, f))| n.abs_diff(ok + f))
            .sum();
        self.dispatched.abs_diff(outcomes)
            + self.ok.abs_diff(ok)
            + self.failed.abs_diff(failed)
            + per_replica
    }
}

/// The three scenarios, per strategy (in `Strategy::ALL` order).
pub(crate) struct Tails {
    pub(crate) plan: Plan,
    pub(crate) all_fast: Vec<Run>,
    pub(crate) slow: Vec<Run>,
    pub(crate) slow_and_flaky: Vec<Run>,
    /// Index of the flaky replica (the same in every group), and the slow node.
    pub(crate) flaky: Option<u8>,
    pub(crate) slow_node: u64,
    pub(crate) elapsed: f64,
}

/// Runs the three scenarios, strategy by strategy; a strategy's runs
/// follow each other, so they see the same load on the machine.
pub(crate) fn run(plan: Plan) -> Result<Tails, String> {
    let started = Instant::now();
    let all_fast_stage = Stage::new(&plan, Scenario::AllFast)?;
    let slow_stage = Stage::new(&plan, Scenario::Slow)?;
    let stage = Stage::new(&plan, Scenario::SlowAndFlaky)?;
    let (mut all_fast, mut slow, mut slow_and_flaky) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..Strategy::ALL.len() {
        all_fast.push(all_fast_stage.measure(s, &plan));
        slow.push(slow_stage.measure(s, &plan));
        slow_and_flaky.push(stage.measure(s, &plan));
    }
    let flaky = stage.flaky;
    all_fast_stage.finish()?;
    slow_stage.finish()?;
    stage.finish()?;
    Ok(Tails {
        plan,
        all_fast,
        slow,
        slow_and_flaky,
        flaky,
        slow_node: SLOW_NODE,
        elapsed: started.elapsed().as_secs_f64(),
    })
}

/// A seed per strategy's group, the same in both scenarios (so placement
/// is the same), and a function of `--seed`.
fn seed(seed: u64, strategy: usize) -> [u8; 32] {
    let mut bytes = *b"tails-----------................";
    bytes[8..16].copy_from_slice(&seed.to_le_bytes());
    bytes[16] = strategy as u8;
    bytes
}

/// One scenario's runtime, with a group per strategy, every replica cast.
struct Stage {
    runtime: DaemonRuntime,
    groups: Vec<ReplicaGroup>,
    /// Per group, its replicas' roles by index.
    roles: Vec<Vec<Role>>,
    board: Board,
    flaky: Option<u8>,
    recording: Option<Recording>,
}

/// Nodes, each hosting one replica of every group.
const NODES: u64 = 4;
/// The node ten times slower than the others.
const SLOW_NODE: u64 = 3;

/// Replicas per group: one per node.
const REPLICAS: usize = NODES as usize;

impl Stage {
    fn new(plan: &Plan, scenario: Scenario) -> Result<Stage, String> {
        let kind = scenario.kind();
        let board: Board = Arc::new(
            (0..=Strategy::ALL.len() * REPLICAS)
                .map(|_| Default::default())
                .collect(),
        );
        let runtime = DaemonRuntime::new(
            (0..NODES).map(|id| NodeInfo::new(id).with_zone(&format!("zone-{}", id % 2))),
        );
        let factory_board = Arc::clone(&board);
        runtime
            .register_factory(kind, move || {
                Box::new(Spinner::new(kind, Arc::clone(&factory_board)))
            })
            .map_err(|e| format!("tails: cannot register `{kind}`: {e}"))?;
        runtime
            .start()
            .map_err(|e| format!("tails: cannot start: {e}"))?;
        let mut stage = Stage {
            recording: plan.record_metrics.then(|| Recording::start(&runtime)),
            runtime,
            groups: Vec::new(),
            roles: Vec::new(),
            board,
            flaky: None,
        };
        for (s, &strategy) in Strategy::ALL.iter().enumerate() {
            let config = ReplicaGroupConfig {
                replica_count: REPLICAS as u8,
                group_seed: seed(plan.seed, s),
                lb_strategy: strategy,
                host_config: DaemonHostConfig::default(),
            };
            let group = ReplicaGroup::spawn(&stage.runtime, kind, config)
                .map_err(|e| format!("tails: cannot spawn a {strategy:?} group: {e}"))?;
            let members = group.replicas();
            stage.flaky = plan.flaky.pick(&members)?;
            let mut roles = vec![Role::Fast; REPLICAS];
            for m in &members {
                let role = scenario.role(m, stage.flaky);
                let seat = 1 + s * REPLICAS + usize::from(m.index);
                (stage
                    .runtime
                    .deliver(m.origin_hash, &spinner::cast(seat, role)))
                .map_err(|e| format!("tails: cannot cast replica {}: {e}", m.index))?;
                roles[usize::from(m.index)] = role;
            }
            stage.groups.push(group);
            stage.roles.push(roles);
        }
        Ok(stage)
    }

    /// Dispatches `plan.events` events to strategy `s`'s group from
    /// `plan.threads` threads at once, as fast as they go, timing each.
    fn measure(&self, s: usize, plan: &Plan) -> Run {
        let (group, threads) = (&self.groups[s], plan.threads.max(1));
        let first_seat = 1 + s * REPLICAS;
        let roles = &self.roles[s];
        let start = Barrier::new(threads);
        let budget = TIME_PER_EVENT.saturating_mul(u32::try_from(plan.events).unwrap_or(u32::MAX));
        let started = Instant::now();
        let mut total = thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (start, events) = (&start, plan.events / threads as u64);
                    let events = events + u64::from((t as u64) < plan.events % threads as u64);
                    scope.spawn(move || {
                        let mut router = group.router();
                        let ctx = RequestContext::new();
                        let event = Event::new(Bytes::from_static(b"reading"));
                        let mut run = Run::new(REPLICAS);
                        start.wait();
                        let deadline = Instant::now() + budget;
                        for _ in 0..events {
                            SERVED_BY.set(UNSEATED);
                            let t0 = Instant::now();
                            if t0 > deadline {
                                break;
                            }
                            let result = router.dispatch(&ctx, &event);
                            let ns = t0.elapsed().as_nanos() as u64;
                            let ns = ns.saturating_sub(plan.timer_ns).max(1);
                            run.dispatch_ns.saturating_record(ns);
                            run.dispatched += 1;
                            match result {
                                Ok(_) => run.ok += 1,
                                Err(e) if e.was_processed() => run.failed += 1,
                                Err(_) => run.rejected += 1,
                            }
                            let Some(i) = SERVED_BY.get().checked_sub(first_seat) else {
                                continue;
                            };
                            if let Some(served) = run.served.get_mut(i) {
                                *served += 1;
                                if roles[i] == Role::Fast {
                                    run.fast_ns.saturating_record(ns);
                                }
                            }
                        }
                        run
                    })
                })
                .collect();
            let mut total = Run::new(REPLICAS);
            for h in handles {
                total.merge(&h.join().expect("a tails thread panicked"));
            }
            total
        });
        total.seconds = started.elapsed().as_secs_f64();
        total.roles = roles.clone();
        total.processed = (self.board[first_seat..][..REPLICAS].iter())
            .map(|s| s.counts())
            .collect();
        total
    }

    /// Stops the runtime; fails if a daemon processed an event with no role.
    fn finish(self) -> Result<(), String> {
        drop(self.recording);
        self.runtime.shutdown();
        let (ok, failed) = self.board[UNSEATED].counts();
        match ok + failed {
            0 => Ok(()),
            n => Err(format!("tails: {n} events went to a daemon with no role")),
        }
    }
}
