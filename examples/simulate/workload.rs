//! The traffic side: daemons that count what they process, and the routing
//! threads that dispatch events to the groups as fast as they can.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use replica_router::*;

/// The daemon kinds, one factory each.
pub(crate) const KINDS: [&str; 3] = ["ingest", "enrich", "index"];

/// Events between two publications of a thread's counters (and two looks at
/// the stop flag): about half a millisecond of work.
const BATCH: u64 = 1024;

/// Distinct routing keys (and sessions) each thread cycles through.
const KEYS: usize = 4096;

/// One daemon instance: counts the events it processed. `process` runs under
/// its host's lock, so the counter has one writer and needs no atomic
/// read-modify-write; the routing threads read it only after they stopped.
struct Worker {
    kind: &'static str,
    processed: Arc<CachePadded<AtomicU64>>,
}

impl MeshDaemon for Worker {
    fn name(&self) -> &str {
        self.kind
    }

    fn process(&mut self, _event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        let n = self.processed.load(Ordering::Relaxed);
        self.processed.store(n + 1, Ordering::Relaxed);
        Ok(Vec::new())
    }
}

/// Every daemon instance ever created, with its counter: the daemons' own
/// account of what they processed, checked against the routing threads'.
#[derive(Default)]
pub(crate) struct Ledger {
    daemons: Mutex<Vec<(usize, Arc<CachePadded<AtomicU64>>)>>,
}

impl Ledger {
    /// The factory for `KINDS[kind]`: each daemon it makes is entered here.
    pub(crate) fn factory(
        self: &Arc<Self>,
        kind: usize,
    ) -> impl Fn() -> Box<dyn MeshDaemon> + Send + Sync + 'static {
        let ledger = Arc::clone(self);
        move || {
            let processed = Arc::new(CachePadded::new(AtomicU64::new(0)));
            let entry = (kind, Arc::clone(&processed));
            ledger.daemons.lock().expect("ledger lock").push(entry);
            Box::new(Worker {
                kind: KINDS[kind],
                processed,
            })
        }
    }

    /// Events processed per kind, and daemon instances created.
    pub(crate) fn processed(&self) -> ([u64; KINDS.len()], usize) {
        let daemons = self.daemons.lock().expect("ledger lock");
        let mut per_kind = [0; KINDS.len()];
        for (kind, n) in daemons.iter() {
            per_kind[*kind] += n.load(Ordering::Acquire);
        }
        (per_kind, daemons.len())
    }
}

/// What the request context carries, chosen per group by its strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keying {
    /// Nothing: the strategy alone decides.
    Plain,
    /// A user id as routing key (consistent hashing is sticky per user).
    UserKey,
    /// A session on half of the requests (adaptive hashes those, balances the rest).
    SomeSessions,
}

impl Keying {
    pub(crate) fn for_strategy(strategy: Strategy) -> Keying {
        match strategy {
            Strategy::ConsistentHash => Keying::UserKey,
            Strategy::Adaptive => Keying::SomeSessions,
            _ => Keying::Plain,
        }
    }
}

/// A group as the routing threads see it.
pub(crate) struct Target {
    pub(crate) group: Arc<ReplicaGroup>,
    /// Index of the group's strategy in `Strategy::ALL`.
    pub(crate) strategy: usize,
    pub(crate) keying: Keying,
    /// Origin hashes of replicas 0.. (as many as the group can grow to), to
    /// tell which replica a sampled route chose.
    pub(crate) origins: Vec<u64>,
}

/// A routing thread's running totals, published every `BATCH` events so the
/// progress bar can read them without touching the hot loop's cache lines.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) routed: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// Why an event came back unprocessed.
pub(crate) const REASONS: [&str; 4] = [
    "no healthy member",
    "chosen replicas vanished",
    "shutting down",
    "other",
];

/// Everything one routing thread measured.
pub(crate) struct ThreadReport {
    pub(crate) routed: u64,
    /// Processed by a daemon without error.
    pub(crate) delivered: u64,
    /// Processed by a daemon that returned an error (delivered, not retried).
    pub(crate) failed: u64,
    /// Returned unprocessed, by reason (`REASONS`).
    pub(crate) rejected: [u64; REASONS.len()],
    /// Events dispatched per group.
    pub(crate) events: Vec<u64>,
    /// Sampled routes per group and replica index (`stride` per group).
    pub(crate) shares: Vec<u64>,
    pub(crate) stride: usize,
    /// Route and dispatch times of the sampled events, per strategy slot.
    pub(crate) route_ns: Vec<Histogram<u64>>,
    pub(crate) dispatch_ns: Vec<Histogram<u64>>,
}

impl ThreadReport {
    pub(crate) fn new(groups: usize, stride: usize) -> ThreadReport {
        let histograms = || {
            (0..Strategy::ALL.len())
                .map(|_| Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"))
                .collect()
        };
        ThreadReport {
            routed: 0,
            delivered: 0,
            failed: 0,
            rejected: [0; REASONS.len()],
            events: vec![0; groups],
            shares: vec![0; groups * stride],
            stride,
            route_ns: histograms(),
            dispatch_ns: histograms(),
        }
    }

    pub(crate) fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Adds `other`'s counts to this one.
    pub(crate) fn merge(&mut self, other: &ThreadReport) {
        self.routed += other.routed;
        self.delivered += other.delivered;
        self.failed += other.failed;
        for (a, b) in self.rejected.iter_mut().zip(other.rejected) {
            *a += b;
        }
        for (a, b) in self.events.iter_mut().zip(&other.events) {
            *a += b;
        }
        for (a, b) in self.shares.iter_mut().zip(&other.shares) {
            *a += b;
        }
        for (a, b) in self.route_ns.iter_mut().zip(&other.route_ns) {
            a.add(b).expect("same bounds");
        }
        for (a, b) in self.dispatch_ns.iter_mut().zip(&other.dispatch_ns) {
            a.add(b).expect("same bounds");
        }
    }
}

/// The contexts a thread routes with, built once: no allocation per event.
struct Contexts {
    plain: RequestContext,
    users: Vec<RequestContext>,
    sessions: Vec<RequestContext>,
}

impl Contexts {
    fn new() -> Contexts {
        Contexts {
            plain: RequestContext::new(),
            users: (0..KEYS)
                .map(|u| RequestContext::new().with_routing_key(format!("user-{u}")))
                .collect(),
            sessions: (0..KEYS)
                .map(|s| match s % 2 {
                    0 => RequestContext::new().with_session(s as u64),
                    _ => RequestContext::new(),
                })
                .collect(),
        }
    }

    #[inline]
    fn pick(&self, keying: Keying, r: u64) -> &RequestContext {
        let i = r as usize % KEYS;
        match keying {
            Keying::Plain => &self.plain,
            Keying::UserKey => &self.users[i],
            Keying::SomeSessions => &self.sessions[i],
        }
    }
}

/// xorshift64*: a fast generator for the hot loop and the chaos schedule.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (multiply-shift on the high bits).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// Dispatches events to random groups until `stop`, with one `Router` per
/// group. One event in 64 is sampled: a timed probe route shows which
/// replica the strategy picks and what a route costs, and the event's
/// dispatch is timed too. `timer_ns` (the cost of reading the clock) is
/// taken off each sample.
pub(crate) fn route_loop(
    thread: usize,
    targets: &[Target],
    stride: usize,
    live: &Live,
    stop: &AtomicBool,
    timer_ns: u64,
) -> ThreadReport {
    let mut routers: Vec<Router> = targets.iter().map(|t| t.group.router()).collect();
    let contexts = Contexts::new();
    let event = Event::new(Bytes::from_static(b"sensor-reading:42.0"));
    let mut rng = Rng::new(0x5eed_0000 + thread as u64);
    let mut report = ThreadReport::new(targets.len(), stride);
    let n = targets.len() as u64;
    let (mut delivered, mut failed, mut rejected) = (0u64, 0u64, 0u64);
    loop {
        for _ in 0..BATCH {
            let r = rng.next();
            // Disjoint bits of one draw: group (high 32), sample (12-17), key (low 12).
            let g = (((r >> 32) * n) >> 32) as usize;
            let target = &targets[g];
            let ctx = contexts.pick(target.keying, r);
            let router = &mut routers[g];
            let result = if (r >> 12) & 63 == 0 {
                let t0 = Instant::now();
                let probe = router.route(ctx);
                let t1 = Instant::now();
                let result = router.dispatch(ctx, &event);
                let t2 = Instant::now();
                let s = target.strategy;
                let net = |d: std::time::Duration| (d.as_nanos() as u64).saturating_sub(timer_ns);
                report.route_ns[s].saturating_record(net(t1 - t0).max(1));
                report.dispatch_ns[s].saturating_record(net(t2 - t1).max(1));
                if let Ok(origin) = probe {
                    if let Some(i) = target.origins.iter().position(|&o| o == origin) {
                        report.shares[g * stride + i] += 1;
                    }
                }
                result
            } else {
                router.dispatch(ctx, &event)
            };
            match result {
                Ok(_) => delivered += 1,
                Err(e) if e.was_processed() => failed += 1,
                Err(e) => {
                    rejected += 1;
                    report.rejected[reason(&e)] += 1;
                }
            }
            report.events[g] += 1;
        }
        report.routed += BATCH;
        live.routed.store(report.routed, Ordering::Relaxed);
        live.rejected.store(rejected, Ordering::Relaxed);
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    report.delivered = delivered;
    report.failed = failed;
    report
}

fn reason(e: &DispatchError) -> usize {
    match e {
        DispatchError::Route(GroupError::NoHealthyMember) => 0,
        DispatchError::Exhausted { .. } => 1,
        DispatchError::ShuttingDown | DispatchError::Route(GroupError::ShuttingDown) => 2,
        _ => 3,
    }
}

/// What reading the clock costs (the median of many back-to-back reads),
/// to take off each timed sample.
pub(crate) fn timer_overhead_ns() -> u64 {
    let mut samples: Vec<u64> = (0..2001)
        .map(|_| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            (t1 - t0).as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}
