//! Cluster mode end to end: a local etcd, node processes as real OS
//! processes, 100 simulated nodes, 1,000 groups, a node killed with SIGKILL
//! and restarted, 100,000 revisions of history, a compaction, and
//! processes joining late; after each step it checks that every process
//! holds the same rosters, and it measures each step.
//!
//! ```text
//! cargo run --release --features etcd --example cluster -- --json
//! cargo run --release --features etcd --example cluster -- --sim-nodes 0 --groups 50 --history 0
//! ```
//!
//! Exits non-zero when rosters differ after settling, an event was missed
//! or applied twice, or a join took longer than its bound. For a short
//! example to copy, see `examples/cluster_hello.rs`.

mod load;
mod node;
mod report;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use replica_router::cluster::{ClusterOptions, ClusterRuntime};
use replica_router::*;
use replica_router_testkit::etcd::{EtcdConfig, LocalEtcd};
use replica_router_testkit::support::Echo;

use node::NodeProcess;
use report::{compact, identical_at, ms, timed_join, until, Timeline};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "Router processes sharing rosters through etcd: failover, history, late joins")]
struct Args {
    /// Use this etcd instead of starting a local one.
    #[arg(long)]
    etcd: Option<String>,
    /// Node processes (real OS processes).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=64))]
    nodes: u64,
    /// Further nodes, records this process writes under one lease.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    sim_nodes: u64,
    /// Groups to create.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    groups: u32,
    /// Rescales to write, one revision each, before the late joins.
    #[arg(long, default_value_t = 100_000)]
    history: u64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Internal: run as node process with this id.
    #[arg(long, hide = true)]
    child_node: Option<u64>,
    /// Internal: the key prefix of a node process.
    #[arg(long, hide = true, default_value = "/replica-router-example")]
    prefix: String,
}

/// The cluster secret of this run, handed to the node processes out of band
/// (an environment variable).
const SECRET_VAR: &str = "REPLICA_ROUTER_EXAMPLE_SECRET";

/// Checkpoint interval; etcd keeps `RETENTION` revisions when compacting.
const CHECKPOINT_EVERY: i64 = 1_000;
const RETENTION: i64 = 5_000;

fn register(rt: &DaemonRuntime) -> Result<(), RuntimeError> {
    rt.register_factory("echo", || Box::new(Echo))
}

fn zone(node: u64) -> String {
    format!("zone-{}", node % 3)
}

fn secret() -> [u8; 32] {
    let hex = std::env::var(SECRET_VAR).unwrap_or_default();
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    secret
}

fn cluster_options(etcd: &str, prefix: &str) -> ClusterOptions {
    ClusterOptions::new(etcd, prefix)
        .with_secret(secret())
        .with_checkpoint_every(CHECKPOINT_EVERY)
        .with_timeout(Duration::from_secs(5))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // `RUST_LOG=replica_router=info` shows what the cluster module logs.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match (args.child_node, &args.etcd) {
        (Some(node), Some(etcd)) => node::child(node, etcd, &args.prefix),
        (Some(_), None) => {
            eprintln!("error: --child-node needs --etcd");
            ExitCode::from(2)
        }
        (None, _) => match coordinator(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn coordinator(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let t = Timeline {
        start: Instant::now(),
        quiet: args.json,
    };
    // A fresh secret for this run, handed to the node processes through
    // their environment.
    let key: String =
        blake3::hash(format!("{:?}", Instant::now()).as_bytes()).to_hex()[..64].into();
    std::env::set_var(SECRET_VAR, key);
    let config = EtcdConfig {
        auto_compaction: Some(("revision".into(), RETENTION.to_string())),
        ..EtcdConfig::default()
    };
    let (_etcd, endpoint) = match &args.etcd {
        Some(url) => (None, url.clone()),
        None => {
            let etcd = LocalEtcd::start_with(config)?;
            let url = etcd.endpoint();
            (Some(etcd), url)
        }
    };
    let prefix = format!("/replica-router-example/{}", std::process::id());
    t.say(format!("etcd at {endpoint}, prefix {prefix}"));
    let options = cluster_options(&endpoint, &prefix);
    let started = Instant::now();
    let observer = Arc::new(ClusterRuntime::observe(options.clone(), register)?);
    let join_empty = started.elapsed();

    let mut nodes = (1..=args.nodes)
        .map(|id| NodeProcess::start(&endpoint, &prefix, id))
        .collect::<Result<Vec<_>, _>>()?;
    let sim_ids = 1_000..1_000 + args.sim_nodes;
    let simulated = load::SimulatedNodes::register(&endpoint, &prefix, sim_ids)
        .ok_or("cannot write the simulated nodes")?;
    let joined = until(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.status().is_some())
            && observer
                .etcd_revision()
                .is_ok_and(|r| observer.wait_for_revision(r, Duration::from_secs(1)))
    });
    joined.ok_or("node processes did not join within 30 s")?;
    let total_nodes = args.nodes + simulated.count;
    t.say(format!(
        "{} node processes and {} simulated nodes joined",
        args.nodes, simulated.count
    ));

    // Groups, then convergence from the last write.
    let started = Instant::now();
    let replicas = args.nodes.min(3) as u8;
    let spawned = load::spawn_groups(&observer, args.groups, replicas);
    let last_write = Instant::now();
    t.say(format!(
        "{spawned} groups of {replicas} created in {:.0} ms",
        ms(started.elapsed())
    ));
    let mut checks = Vec::new();
    let revision = observer.etcd_revision()?;
    let converge = until(Duration::from_secs(15), || {
        identical_at(&observer, &nodes, revision)
    })
    .map(|_| last_write.elapsed());
    checks.push(converge.is_some());
    t.say(format!(
        "{total_nodes} nodes x {spawned} groups: identical digests everywhere {:?} after the last write",
        converge
    ));
    let settle = |nodes: &[NodeProcess], what: &str, checks: &mut Vec<bool>| {
        let revision = observer.etcd_revision().unwrap_or(0);
        let ok = until(Duration::from_secs(30), || {
            identical_at(&observer, nodes, revision)
        })
        .is_some();
        checks.push(ok);
        let digest = observer.status().digest;
        let verdict = if ok {
            "rosters identical"
        } else {
            "ROSTERS DIFFER"
        };
        t.say(format!(
            "{what}: {verdict} ({} processes at revision {revision}, digest {digest:016x})",
            nodes.len() + 1
        ));
    };

    // SIGKILL one node process, then restart it.
    let victim_index = nodes.len() / 2;
    let victim_id = nodes[victim_index].id;
    let hosted = observer
        .groups()
        .iter()
        .flat_map(|g| g.replicas())
        .filter(|m| m.node_id == victim_id)
        .count();
    let killed_at = Instant::now();
    nodes[victim_index].sigkill();
    let victim = nodes.remove(victim_index);
    t.say(format!(
        "SIGKILL node {victim_id} (hosting {hosted} replicas)"
    ));
    let failover = until(Duration::from_secs(10), || {
        observer
            .groups()
            .iter()
            .all(|g| g.replicas().iter().all(|m| m.node_id != victim_id))
            && observer
                .etcd_revision()
                .is_ok_and(|r| identical_at(&observer, &nodes, r))
    })
    .map(|_| ms(killed_at.elapsed()));
    t.say(format!(
        "every survivor applied node {victim_id}'s failure: failover {failover:?} ms"
    ));
    settle(&nodes, "after the failover", &mut checks);
    drop(victim);
    let restarted_at = Instant::now();
    nodes.push(NodeProcess::start(&endpoint, &prefix, victim_id)?);
    let recovery = until(Duration::from_secs(15), || {
        observer
            .etcd_revision()
            .is_ok_and(|r| identical_at(&observer, &nodes, r))
            && nodes.iter().all(|n| n.status().is_some())
    })
    .map(|_| ms(restarted_at.elapsed()));
    t.say(format!(
        "node {victim_id} restarted and recovered everywhere in {recovery:?} ms"
    ));
    settle(&nodes, "after the recovery", &mut checks);

    // Short history: a late joiner.
    let (join_short, _) = timed_join(&options, &observer)?;
    t.say(format!(
        "a process joining now (short history) caught up in {:.1} ms",
        ms(join_short)
    ));

    // Every event exactly once, everywhere: each process applied exactly
    // the events between where it started and where it stands.
    let (mut missed, mut duplicated, mut history, mut skipped) = (0, 0, 0, 0);
    let own = observer.status();
    let mut applied = vec![(
        own.feed.events_applied,
        own.feed.restored_from,
        own.applied_revision,
    )];
    for n in &nodes {
        if let Some(s) = n.status() {
            applied.push((s.applied, s.restored_from, s.revision));
            skipped += s.duplicates;
        }
    }
    for (events, from, through) in applied {
        let expected = observer.history_events(from, through)?;
        history = history.max(expected);
        missed += expected.saturating_sub(events);
        duplicated += events.saturating_sub(expected);
    }
    t.say(format!("{history} events in etcd's history; per process missed {missed}, applied twice {duplicated} (repeats skipped: {skipped})"));

    // Long history: rescales, one revision each.
    let before = observer.status().feed.events_applied;
    let started = Instant::now();
    let written = load::rescale(&endpoint, &prefix, args.history);
    let wrote_in = started.elapsed();
    let now = observer.etcd_revision()?;
    observer.wait_for_revision(now, Duration::from_secs(300));
    let replay_rate =
        (observer.status().feed.events_applied - before) as f64 / started.elapsed().as_secs_f64();
    t.say(format!(
        "wrote {written} rescales in {:.1} s, applied at {replay_rate:.0} changes/s; etcd at revision {now}",
        wrote_in.as_secs_f64()
    ));
    settle(&nodes, "after the rescales", &mut checks);

    let (join_long, long_identical) = timed_join(&options, &observer)?;
    checks.push(long_identical);
    t.say(format!(
        "a process joining after {now} revisions caught up in {:.1} ms",
        ms(join_long)
    ));
    let compacted = compact(&endpoint, RETENTION)?;
    let (join_compacted, compacted_identical) = timed_join(&options, &observer)?;
    checks.push(compacted_identical);
    t.say(format!(
        "after etcd compacted to revision {compacted}: joined in {:.1} ms",
        ms(join_compacted)
    ));
    let feed = observer.status().feed;
    t.say(format!(
        "checkpoints: {} bytes sealed, {} us of writer time; {} verified, {} mismatched",
        feed.last_checkpoint_bytes,
        feed.last_checkpoint_micros,
        feed.checkpoints_verified,
        feed.checkpoint_mismatches
    ));

    let rosters_identical = checks.iter().all(|&ok| ok);
    let joins_fast = [join_long, join_compacted]
        .iter()
        .all(|d| *d <= Duration::from_secs(1));
    let converged_fast = converge.is_some_and(|d| d <= Duration::from_secs(2));
    let healthy = rosters_identical
        && missed == 0
        && duplicated == 0
        && failover.is_some()
        && joins_fast
        && converged_fast
        && feed.checkpoint_mismatches == 0;
    t.say(if healthy {
        "verdict: identical rosters after every change, every event exactly once, joins within 1 s"
    } else {
        "verdict: FAILED"
    });
    if args.json {
        let json = serde_json::json!({
            "nodes": total_nodes,
            "node_processes": args.nodes,
            "groups": spawned,
            "revisions_applied": observer.status().applied_revision,
            "rosters_identical": rosters_identical,
            "failover_ms": failover,
            "recovery_ms": recovery,
            "events_in_history": history,
            "events_missed": missed,
            "events_duplicated": duplicated,
            "replay_changes_per_sec": replay_rate,
            "converge_ms": converge.map(ms),
            "history_revisions": now,
            "join_empty_ms": ms(join_empty),
            "join_short_ms": ms(join_short),
            "join_long_ms": ms(join_long),
            "join_compacted_ms": ms(join_compacted),
            "compacted_at": compacted,
            "checkpoint_every": CHECKPOINT_EVERY,
            "checkpoint_bytes": feed.last_checkpoint_bytes,
            "checkpoint_writer_us": feed.last_checkpoint_micros,
            "checkpoints_verified": feed.checkpoints_verified,
            "checkpoint_mismatches": feed.checkpoint_mismatches,
        });
        println!("{json}");
    }
    drop(simulated);
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
