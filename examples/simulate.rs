//! A chaos simulation: replica groups on a cluster of nodes, routing threads
//! routing and delivering events as fast as they can, and a chaos thread
//! failing and recovering nodes and rescaling groups underneath them.
//!
//! ```text
//! cargo run --release --example simulate                 # 10 s on the defaults
//! cargo run --release --example simulate -- --seconds 3 --seed 7
//! ```
//!
//! Every event is accounted for: each one routed is either delivered (and
//! counted by the daemon that processed it) or rejected with a reason. The
//! run exits non-zero if the two counts disagree.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use replica_router::*;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "Route events to replica groups while nodes fail, recover and groups rescale")]
struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(2..=1000))]
    nodes: u64,
    /// Zones the nodes are spread over.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    zones: u64,
    /// Replica groups.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=4096))]
    groups: u16,
    /// Replicas per group at start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    replicas: u8,
    /// Routing threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed for the chaos schedule and the group seeds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// A daemon that counts what it processes, so the run can check that every
/// delivered event was processed exactly once.
struct Worker {
    kind: &'static str,
    processed: Arc<AtomicU64>,
}

impl MeshDaemon for Worker {
    fn name(&self) -> &str {
        self.kind
    }
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.processed.fetch_add(1, Ordering::Relaxed);
        Ok(vec![event.payload().clone()])
    }
}

const KINDS: [&str; 3] = ["ingest", "enrich", "index"];
const STRATEGIES: [Strategy; 3] = [
    Strategy::RoundRobin,
    Strategy::Random,
    Strategy::ConsistentHash,
];

/// Totals kept by the routing threads.
#[derive(Default)]
struct Totals {
    routed: AtomicU64,
    delivered: AtomicU64,
    rejected: AtomicU64,
    unroutable: AtomicU64,
}

/// Totals kept by the chaos thread.
#[derive(Default, Debug)]
struct Chaos {
    nodes_failed: u64,
    nodes_recovered: u64,
    failovers: usize,
    scale_events: u64,
    scale_refused: u64,
}

/// xorshift64*, for a reproducible chaos schedule.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if u64::from(args.replicas) > args.nodes {
        eprintln!(
            "error: --replicas {} needs at least as many nodes (--nodes {})",
            args.replicas, args.nodes
        );
        return ExitCode::from(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);

    let processed = Arc::new(AtomicU64::new(0));
    let runtime = DaemonRuntime::new(
        (0..args.nodes).map(|id| NodeInfo::new(id).with_zone(&format!("zone-{}", id % args.zones))),
    );
    for kind in KINDS {
        let processed = Arc::clone(&processed);
        runtime
            .register_factory(kind, move || {
                Box::new(Worker {
                    kind,
                    processed: Arc::clone(&processed),
                })
            })
            .expect("each kind registers once");
    }
    runtime.start().expect("a new runtime starts");

    let mut rng = Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut groups = Vec::new();
    for g in 0..args.groups {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&args.seed.to_le_bytes());
        seed[8..10].copy_from_slice(&g.to_le_bytes());
        let config = ReplicaGroupConfig {
            replica_count: args.replicas,
            group_seed: seed,
            lb_strategy: STRATEGIES[usize::from(g) % STRATEGIES.len()],
            host_config: DaemonHostConfig::default(),
        };
        match ReplicaGroup::spawn(&runtime, KINDS[usize::from(g) % KINDS.len()], config) {
            Ok(group) => groups.push(Arc::new(group)),
            Err(e) => {
                eprintln!("error: cannot spawn group {g}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "simulating {} s: {} nodes in {} zones, {} groups of {} replicas, {} routing threads",
        args.seconds, args.nodes, args.zones, args.groups, args.replicas, threads
    );

    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let routers: Vec<_> = (0..threads)
        .map(|t| {
            let (runtime, groups, totals, stop) = (
                runtime.clone(),
                groups.clone(),
                Arc::clone(&totals),
                Arc::clone(&stop),
            );
            thread::spawn(move || route_loop(t as u64, &runtime, &groups, &totals, &stop))
        })
        .collect();

    let deadline = started + Duration::from_secs(args.seconds);
    let chaos = chaos_loop(&runtime, &groups, &args, &mut rng, deadline);
    stop.store(true, Ordering::Relaxed);
    for r in routers {
        r.join().expect("routing thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    runtime.shutdown();

    let routed = totals.routed.load(Ordering::Relaxed);
    let delivered = totals.delivered.load(Ordering::Relaxed);
    let rejected = totals.rejected.load(Ordering::Relaxed);
    let unroutable = totals.unroutable.load(Ordering::Relaxed);
    let processed = processed.load(Ordering::Relaxed);
    let lost = routed.saturating_sub(delivered + rejected) + delivered.abs_diff(processed);

    println!();
    println!("events routed        {routed:>14}");
    println!("events delivered     {delivered:>14}   (processed by daemons: {processed})");
    println!("events rejected      {rejected:>14}   (replica gone between route and deliver)");
    println!("routes refused       {unroutable:>14}   (no healthy member)");
    println!("events lost          {lost:>14}");
    println!(
        "throughput           {:>14.0}   routed + delivered events/s",
        routed as f64 / elapsed
    );
    println!(
        "chaos                nodes failed {}, recovered {}, replicas failed over {}, rescales {} ({} refused)",
        chaos.nodes_failed,
        chaos.nodes_recovered,
        chaos.failovers,
        chaos.scale_events,
        chaos.scale_refused
    );
    if lost == 0 {
        println!("verdict: every event accounted for");
        ExitCode::SUCCESS
    } else {
        println!("verdict: {lost} events unaccounted for");
        ExitCode::FAILURE
    }
}

/// Routes and delivers until told to stop, counting every outcome.
fn route_loop(
    thread: u64,
    runtime: &DaemonRuntime,
    groups: &[Arc<ReplicaGroup>],
    totals: &Totals,
    stop: &AtomicBool,
) {
    let mut routers: Vec<Router> = groups.iter().map(|g| g.router()).collect();
    let mut rng = Rng(0x5151_7a7a ^ (thread + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let event = Event::new(Bytes::from_static(b"payload"));
    let (mut routed, mut delivered, mut rejected, mut unroutable) = (0u64, 0u64, 0u64, 0u64);
    let mut batch = 0u32;
    loop {
        let g = rng.below(routers.len() as u64) as usize;
        let ctx = RequestContext::new().with_session(rng.next() & 0xffff);
        match routers[g].route(&ctx) {
            Ok(origin) => {
                routed += 1;
                match runtime.deliver(origin, &event) {
                    Ok(_) => delivered += 1,
                    Err(_) => rejected += 1,
                }
            }
            Err(_) => unroutable += 1,
        }
        batch += 1;
        if batch == 4096 {
            batch = 0;
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    totals.routed.fetch_add(routed, Ordering::Relaxed);
    totals.delivered.fetch_add(delivered, Ordering::Relaxed);
    totals.rejected.fetch_add(rejected, Ordering::Relaxed);
    totals.unroutable.fetch_add(unroutable, Ordering::Relaxed);
}

/// Fails and recovers nodes and rescales groups until the deadline.
fn chaos_loop(
    runtime: &DaemonRuntime,
    groups: &[Arc<ReplicaGroup>],
    args: &Args,
    rng: &mut Rng,
    deadline: Instant,
) -> Chaos {
    let mut chaos = Chaos::default();
    let mut failed: Vec<u64> = Vec::new();
    // Keep enough nodes alive for every group to hold its replicas.
    let max_failed = (args.nodes / 4).max(1);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        match rng.below(3) {
            0 if (failed.len() as u64) < max_failed => {
                let node = rng.below(args.nodes);
                if !failed.contains(&node) {
                    if let Ok(moved) = runtime.node_failed(node) {
                        failed.push(node);
                        chaos.nodes_failed += 1;
                        chaos.failovers += moved;
                    }
                }
            }
            1 if !failed.is_empty() => {
                let node = failed.swap_remove(rng.below(failed.len() as u64) as usize);
                if runtime.node_recovered(node).is_ok() {
                    chaos.nodes_recovered += 1;
                }
            }
            _ => {
                let g = &groups[rng.below(groups.len() as u64) as usize];
                let target = (2 + rng.below(4)) as u8;
                match g.scale_to(target) {
                    Ok(()) => chaos.scale_events += 1,
                    Err(_) => chaos.scale_refused += 1,
                }
            }
        }
    }
    chaos
}
