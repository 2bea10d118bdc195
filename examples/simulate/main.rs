//! A chaos simulation: replica groups on a cluster of nodes, routing threads
//! dispatching events to them as fast as they can, and a chaos thread that
//! fails and recovers nodes (one of them flapping), rescales groups and adds
//! nodes underneath them.
//!
//! ```text
//! cargo run --release --example simulate                  # 10 s on the defaults
//! cargo run --release --example simulate -- --seed 7 --plot run.svg
//! cargo run --release --example simulate -- --seconds 3 --json | tail -1 | jq .
//! RUST_LOG=replica_router=info cargo run --release --example simulate   # every failover
//! cargo run --release --features metrics --example simulate -- --seconds 30 --metrics-addr 127.0.0.1:9000
//! ```
//!
//! Every event is accounted for. The routing threads use
//! [`Router::dispatch`], so each event is either processed by a live replica
//! or comes back with the reason it was not; the daemons count what they
//! processed. The run prints a table per strategy and a verdict, and exits
//! non-zero if the counts disagree (an event lost or processed twice).
//!
//! A short phase follows (`--tails-events`, see `tails.rs`): every strategy
//! with one replica ten times slower than the others, then also one failing
//! every other event, and what that does to the dispatch latency's 99th
//! percentile.

/// `println!` that ignores a closed stdout (`simulate | head`) instead of
/// panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod chaos;
mod json;
mod plot;
mod progress;
mod report;
mod scrape;
mod spinner;
mod tails;
mod tails_report;
mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use clap::{CommandFactory, Parser};
use crossbeam_utils::CachePadded;
use indicatif::ProgressBar;
use replica_router::*;

use chaos::{ChaosLive, Plan};
use report::{GroupEnd, Summary};
use tails::Tails;
use workload::{Keying, Ledger, Live, Rng, Target, ThreadReport, KINDS};

/// Route events to replica groups while nodes fail, recover and flap, groups
/// rescale and nodes join; then show that no event was lost.
#[derive(Debug, Parser)]
#[command(name = "simulate", long_about = None)]
pub(crate) struct Args {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Nodes in the cluster at the start.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=1000))]
    nodes: u64,
    /// Zones the nodes are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    zones: u64,
    /// Replica groups, over 3 daemon kinds and all 11 strategies.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    groups: u16,
    /// Replicas per group at the start; rescales move between this and 2 more.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    replicas: u8,
    /// Routing threads [default: available cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Nodes the chaos thread adds during the run.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=1000))]
    add_nodes: u64,
    /// Seed of the chaos schedule: the same seed gives the same failures, rescales and failovers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Draw events/s over time, with failures and recoveries marked, to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print a JSON summary as the last line (and no progress bar).
    #[arg(long)]
    json: bool,
    /// Events per strategy and run in the tails phase after the run (a slow
    /// node; a slow node and a flaky replica; all fast); 0 skips it.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    tails_events: u64,
    /// The tails phase's flaky replica: `auto` (the first off the slow node),
    /// `none`, or an index.
    #[arg(long, default_value = "auto", value_name = "auto|none|INDEX", value_parser = tails::Flaky::parse)]
    tails_flaky: tails::Flaky,
    /// Serve every replica's statistics for Prometheus at http://HOST:PORT/metrics
    /// while the run lasts (needs `--features metrics`).
    #[arg(long, value_name = "HOST:PORT", value_parser = scrape::parse_addr)]
    metrics_addr: Option<SocketAddr>,
}

impl Args {
    /// Checks the combinations clap cannot.
    fn validate(&self) -> Result<(), String> {
        if u64::from(self.replicas) > self.nodes {
            return Err(format!(
                "--replicas {} needs at least as many nodes, but --nodes is {}: replicas of a group go to distinct nodes",
                self.replicas, self.nodes
            ));
        }
        if self.zones > self.nodes {
            return Err(format!(
                "--zones {} is more than --nodes {}: every zone needs a node",
                self.zones, self.nodes
            ));
        }
        if let Some(path) = &self.plot {
            if path.extension().and_then(|e| e.to_str()) != Some("svg") {
                return Err(format!(
                    "--plot {}: the plot is an SVG file, name it FILE.svg",
                    path.display()
                ));
            }
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if dir.is_some_and(|d| !d.is_dir()) {
                return Err(format!(
                    "--plot {}: directory {} does not exist",
                    path.display(),
                    dir.unwrap_or(path).display()
                ));
            }
        }
        Ok(())
    }

    fn threads(&self) -> usize {
        self.threads.map_or_else(
            || thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        )
    }

    /// The range rescales move in.
    fn scale(&self) -> (u8, u8) {
        let high = (u64::from(self.replicas) + 2).min(self.nodes).min(255) as u8;
        (self.replicas, high)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(message) = args.validate() {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    let bar = progress::bar(&args);
    progress::init_tracing(bar.clone());
    if let Some(addr) = args.metrics_addr {
        if let Err(message) = scrape::serve(addr) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    let then_tails = |summary| {
        let plan = tails::Plan {
            events: args.tails_events,
            threads: args.threads().min(2),
            seed: args.seed,
            record_metrics: args.metrics_addr.is_some(),
            timer_ns: workload::timer_overhead_ns(),
            flaky: args.tails_flaky,
        };
        let spinner = progress::spinner(&args, "tails: a slow node and a flaky replica");
        let measured = (args.tails_events > 0).then(|| tails::run(plan));
        spinner.finish_and_clear();
        Ok((summary, measured.transpose()?))
    };
    match run(&args, &bar).and_then(then_tails) {
        Ok((summary, tails)) => finish(&args, &summary, tails.as_ref()),
        Err(message) => {
            bar.finish_and_clear();
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// A seed per group: distinct for every group, and a function of `--seed`.
fn group_seed(seed: u64, group: u16) -> [u8; 32] {
    let mut bytes = *b"simulate----------..............";
    bytes[8..16].copy_from_slice(&seed.to_le_bytes());
    bytes[16..18].copy_from_slice(&group.to_le_bytes());
    bytes
}

fn run(args: &Args, bar: &ProgressBar) -> Result<Summary, String> {
    let threads = args.threads();
    let (_, scale_high) = args.scale();
    let flapper = (args.nodes > 1).then(|| Rng::new(args.seed).below(args.nodes));

    let ledger = Arc::new(Ledger::default());
    let runtime = DaemonRuntime::new(
        (0..args.nodes).map(|id| NodeInfo::new(id).with_zone(&format!("zone-{}", id % args.zones))),
    );
    for (i, kind) in KINDS.iter().enumerate() {
        runtime
            .register_factory(kind, ledger.factory(i))
            .map_err(|e| format!("cannot register kind `{kind}`: {e}"))?;
    }
    runtime.start().map_err(|e| format!("cannot start: {e}"))?;
    let recording = args
        .metrics_addr
        .map(|_| scrape::Recording::start(&runtime));

    let mut targets = Vec::new();
    for g in 0..args.groups {
        let slot = usize::from(g) % Strategy::ALL.len();
        let strategy = Strategy::ALL[slot];
        let seed = group_seed(args.seed, g);
        let config = ReplicaGroupConfig {
            replica_count: args.replicas,
            group_seed: seed,
            lb_strategy: strategy,
            host_config: DaemonHostConfig::default(),
        };
        let kind = KINDS[usize::from(g) % KINDS.len()];
        let group = ReplicaGroup::spawn(&runtime, kind, config)
            .map_err(|e| format!("cannot spawn group {g} ({kind}, {strategy:?}): {e}"))?;
        targets.push(Target {
            group: Arc::new(group),
            strategy: slot,
            keying: Keying::for_strategy(strategy),
            origins: (0..scale_high)
                .map(|i| derive_replica_identity(&seed, i).origin_hash())
                .collect(),
        });
    }
    let groups: Vec<_> = targets.iter().map(|t| Arc::clone(&t.group)).collect();
    let targets = Arc::new(targets);

    report::print_header(args, threads, flapper);
    progress::start(bar, args);

    let timer_ns = workload::timer_overhead_ns();
    let stop = Arc::new(AtomicBool::new(false));
    let live: Arc<Vec<CachePadded<Live>>> =
        Arc::new((0..threads).map(|_| Default::default()).collect());
    let chaos_live = Arc::new(ChaosLive::default());
    let plan = Plan {
        seed: args.seed,
        ticks: args.seconds * 1000 / chaos::TICK.as_millis() as u64,
        nodes: args.nodes,
        zones: args.zones,
        flapper,
        max_down: (args.nodes as usize / 4).max(1),
        add_nodes: args.add_nodes,
        scale: args.scale(),
    };

    let started = Instant::now();
    let routers: Vec<_> = (0..threads)
        .map(|t| {
            let (targets, live, stop) =
                (Arc::clone(&targets), Arc::clone(&live), Arc::clone(&stop));
            let stride = usize::from(scale_high);
            thread::Builder::new()
                .name(format!("router-{t}"))
                .spawn(move || workload::route_loop(t, &targets, stride, &live[t], &stop, timer_ns))
                .map_err(|e| format!("cannot start routing thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let chaos = {
        let (runtime, groups, live) = (runtime.clone(), groups.clone(), Arc::clone(&chaos_live));
        thread::Builder::new()
            .name("chaos".into())
            .spawn(move || chaos::run(&plan, &runtime, &groups, started, &live))
            .map_err(|e| format!("cannot start chaos thread: {e}"))?
    };

    let series = progress::watch(args, bar, started, &live, &chaos_live);
    stop.store(true, Ordering::Relaxed);
    let mut totals = ThreadReport::new(targets.len(), usize::from(scale_high));
    for r in routers {
        totals.merge(
            &r.join()
                .map_err(|_| "a routing thread panicked".to_owned())?,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let chaos = chaos
        .join()
        .map_err(|_| "the chaos thread panicked".to_owned())?;
    bar.finish_and_clear();

    let (processed, daemons) = ledger.processed();
    let group_ends = targets
        .iter()
        .map(|t| GroupEnd {
            strategy: t.strategy,
            failovers: t.group.term(),
            replicas: t.group.replica_count(),
            healthy: t.group.healthy_count(),
        })
        .collect();
    drop(recording);
    runtime.shutdown();
    Ok(Summary {
        seconds: args.seconds,
        seed: args.seed,
        threads,
        nodes: args.nodes,
        groups: args.groups,
        floor: usize::from(args.replicas),
        elapsed,
        timer_ns,
        totals,
        processed,
        daemons,
        chaos,
        group_ends,
        series,
        flapper,
    })
}

fn finish(args: &Args, summary: &Summary, tails: Option<&Tails>) -> ExitCode {
    summary.print();
    if let Some(tails) = tails {
        tails.print();
    }
    if let Some(path) = &args.plot {
        match plot::draw(path, summary) {
            Ok(()) => say!("plot: {}", path.display()),
            Err(e) => {
                eprintln!("error: cannot draw {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    if args.json {
        let mut json = summary.json();
        match tails {
            Some(tails) => tails.extend_json(&mut json),
            None => tails_report::skipped_json(&mut json),
        }
        say!("{}", json);
    }
    if summary.accounted() && tails.is_none_or(|t| t.unaccounted() == 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
