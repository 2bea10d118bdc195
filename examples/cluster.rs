//! Cluster mode end to end: a local etcd, node processes as real OS
//! processes, groups, a node killed with SIGKILL and restarted, and a check
//! that every process holds the same rosters after each change.
//!
//! ```text
//! cargo run --release --features etcd --example cluster
//! cargo run --release --features etcd --example cluster -- --json
//! cargo run --release --features etcd --example cluster -- --sim-nodes 100 --groups 1000 --replay-changes 10000
//! ```
//!
//! Needs `protoc` to build (Debian: protobuf-compiler). Exits non-zero when
//! rosters differ after settling or an event was missed.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use replica_router::cluster::{ClusterOptions, ClusterRuntime, NodeMembership};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::process::{report_status, ReportingProcess};
use replica_router_testkit::support::Echo;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    about = "Router processes sharing rosters through etcd, with a node killed and restarted"
)]
struct Args {
    /// Use this etcd instead of starting a local one.
    #[arg(long)]
    etcd: Option<String>,
    /// Node processes (real OS processes).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=64))]
    nodes: u64,
    /// Further nodes whose leases this process holds (no router of their own).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    sim_nodes: u64,
    /// Groups to create.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    groups: u32,
    /// Extra group rescales to write, to measure how fast a late joiner replays history.
    #[arg(long, default_value_t = 0)]
    replay_changes: u32,
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

fn register(rt: &DaemonRuntime) -> Result<(), RuntimeError> {
    rt.register_factory("echo", || Box::new(Echo))
}

fn zone(node: u64) -> String {
    format!("zone-{}", node % 3)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match (args.child_node, &args.etcd) {
        (Some(node), Some(etcd)) => child(node, etcd, &args.prefix),
        (Some(_), None) => {
            eprintln!("error: --child-node needs --etcd");
            ExitCode::from(2)
        }
        (None, _) => coordinator(&args),
    }
}

/// A node process: joins, then reports `STATUS <revision> <digest> <applied>
/// <duplicates>` every 10 ms until stdin closes.
fn child(node: u64, etcd: &str, prefix: &str) -> ExitCode {
    let options = ClusterOptions::new(etcd, prefix);
    let process = match ClusterRuntime::join(
        options,
        NodeInfo::new(node).with_zone(&zone(node)),
        register,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("node {node}: {e}");
            return ExitCode::FAILURE;
        }
    };
    report_status(Duration::from_millis(10), || {
        let st = process.status();
        let revision = st.applied_revision.max(0) as u64;
        let feed = st.feed;
        vec![
            revision,
            st.digest,
            feed.events_applied,
            feed.duplicates_skipped,
        ]
    });
    ExitCode::SUCCESS
}

#[derive(Clone, Copy, Debug, Default)]
struct Status {
    revision: i64,
    digest: u64,
    applied: u64,
    duplicates: u64,
}

/// A node process seen from the coordinator.
struct NodeProcess {
    id: u64,
    process: ReportingProcess,
}

impl NodeProcess {
    fn start(etcd: &str, prefix: &str, id: u64) -> std::io::Result<NodeProcess> {
        let process = ReportingProcess::start(Command::new(std::env::current_exe()?).args([
            "--child-node",
            &id.to_string(),
            "--etcd",
            etcd,
            "--prefix",
            prefix,
        ]))?;
        Ok(NodeProcess { id, process })
    }

    fn status(&self) -> Option<Status> {
        let [revision, digest, applied, duplicates] = self.process.last_report()?[..] else {
            return None;
        };
        Some(Status {
            revision: revision as i64,
            digest,
            applied,
            duplicates,
        })
    }

    fn sigkill(&mut self) {
        self.process.kill();
    }
}

/// Prints timeline lines, relative to the start.
struct Timeline {
    start: Instant,
    quiet: bool,
}

impl Timeline {
    fn say(&self, what: impl AsRef<str>) {
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
fn until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
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
/// and holds the coordinator's digest.
fn identical_at(observer: &ClusterRuntime, nodes: &[NodeProcess], revision: i64) -> bool {
    let mine = observer.status();
    mine.applied_revision >= revision
        && nodes.iter().all(|n| {
            n.status()
                .is_some_and(|s| s.revision == mine.applied_revision && s.digest == mine.digest)
        })
}

fn coordinator(args: &Args) -> ExitCode {
    let timeline = Timeline {
        start: Instant::now(),
        quiet: args.json,
    };
    let (_etcd, endpoint) = match &args.etcd {
        Some(url) => (None, url.clone()),
        None => match LocalEtcd::start() {
            Ok(etcd) => {
                let url = etcd.endpoint();
                (Some(etcd), url)
            }
            Err(e) => {
                eprintln!("error: cannot start a local etcd: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let prefix = format!("/replica-router-example/{}", std::process::id());
    timeline.say(format!("etcd at {endpoint}, prefix {prefix}"));
    let options = ClusterOptions::new(endpoint.clone(), prefix.clone());
    let observer = match ClusterRuntime::observe(options.clone(), register) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut nodes: Vec<NodeProcess> = Vec::new();
    for id in 1..=args.nodes {
        match NodeProcess::start(&endpoint, &prefix, id) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                eprintln!("error: cannot start node process {id}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let simulated: Vec<NodeMembership> = (0..args.sim_nodes)
        .filter_map(|i| {
            let id = 1_000 + i;
            NodeMembership::claim(&options, &NodeInfo::new(id).with_zone(&zone(id))).ok()
        })
        .collect();
    let total_nodes = args.nodes + simulated.len() as u64;
    let joined = until(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.status().is_some())
            && observer
                .etcd_revision()
                .is_ok_and(|r| observer.wait_for_revision(r, Duration::from_secs(1)))
    });
    if joined.is_none() {
        eprintln!("error: node processes did not join within 30 s");
        return ExitCode::FAILURE;
    }
    timeline.say(format!(
        "{} node processes and {} simulated nodes joined",
        args.nodes,
        simulated.len()
    ));

    // Groups.
    let started = Instant::now();
    let replicas = args.nodes.min(3) as u8;
    let mut spawned = 0;
    for g in 0..args.groups {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&g.to_le_bytes());
        seed[4..8].copy_from_slice(&std::process::id().to_le_bytes());
        let strategy = Strategy::ALL[g as usize % Strategy::ALL.len()];
        match observer.spawn_group("echo", seed, replicas, strategy) {
            Ok(_) => spawned += 1,
            Err(e) => eprintln!("warning: group {g}: {e}"),
        }
    }
    timeline.say(format!(
        "{spawned} groups of {replicas} created in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    ));
    let mut identical_after_each = Vec::new();
    let settle = |nodes: &[NodeProcess], what: &str, checks: &mut Vec<bool>| {
        let revision = observer.etcd_revision().unwrap_or(0);
        let ok = until(Duration::from_secs(15), || {
            identical_at(&observer, nodes, revision)
        })
        .is_some();
        checks.push(ok);
        let digest = observer.status().digest;
        timeline.say(format!(
            "{what}: {} ({} processes at revision {revision}, digest {digest:016x})",
            if ok {
                "rosters identical"
            } else {
                "ROSTERS DIFFER"
            },
            nodes.len() + 1
        ));
    };
    settle(&nodes, "after the groups", &mut identical_after_each);

    // SIGKILL one node process.
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
    let mut victim = nodes.remove(victim_index);
    timeline.say(format!(
        "SIGKILL node {victim_id} (hosting {hosted} replicas)"
    ));
    let failed_key_revision = || marker_revision(&observer, &endpoint, &prefix, victim_id);
    let failover = until(Duration::from_secs(10), || {
        failed_key_revision().is_some_and(|rev| {
            observer.status().applied_revision >= rev
                && nodes
                    .iter()
                    .all(|n| n.status().is_some_and(|s| s.revision >= rev))
        })
    });
    let failover_ms = failover.map(|_| killed_at.elapsed().as_secs_f64() * 1e3);
    match failover_ms {
        Some(ms) => timeline.say(format!(
            "every survivor applied node {victim_id}'s failure: failover {ms:.0} ms"
        )),
        None => timeline.say("FAILOVER NOT APPLIED within 10 s"),
    }
    settle(&nodes, "after the failover", &mut identical_after_each);

    // Restart it.
    let restarted_at = Instant::now();
    match NodeProcess::start(&endpoint, &prefix, victim_id) {
        Ok(n) => {
            victim.id = n.id;
            nodes.push(n);
        }
        Err(e) => eprintln!("error: cannot restart node {victim_id}: {e}"),
    }
    drop(victim);
    let recovery = until(Duration::from_secs(15), || {
        let rev = node_key_revision(&observer, &endpoint, &prefix, victim_id);
        rev.is_some_and(|rev| {
            rev > 0
                && nodes
                    .iter()
                    .all(|n| n.status().is_some_and(|s| s.revision >= rev))
        }) && observer.status().applied_revision >= rev.unwrap_or(i64::MAX)
    });
    let recovery_ms = recovery.map(|_| restarted_at.elapsed().as_secs_f64() * 1e3);
    match recovery_ms {
        Some(ms) => timeline.say(format!(
            "node {victim_id} restarted and recovered everywhere in {ms:.0} ms"
        )),
        None => timeline.say("RECOVERY NOT APPLIED within 15 s"),
    }
    settle(&nodes, "after the recovery", &mut identical_after_each);

    // Replay throughput: rescales, then a fresh process replays all history.
    let mut replay_rate = None;
    if args.replay_changes > 0 {
        let groups = observer.groups();
        let writes = write_rescales(&endpoint, &prefix, &groups, args.replay_changes);
        let latest = observer.etcd_revision().unwrap_or(0);
        observer.wait_for_revision(latest, Duration::from_secs(120));
        let history = count_history(&endpoint, &prefix);
        let replay_started = Instant::now();
        if let Ok(late) = ClusterRuntime::observe(options.clone(), register) {
            let took = replay_started.elapsed().as_secs_f64();
            replay_rate = Some(late.status().feed.events_applied as f64 / took);
            timeline.say(format!(
                "wrote {writes} rescales; a new process replayed {history} events in {:.0} ms ({:.0} changes/s)",
                took * 1e3,
                replay_rate.unwrap_or(0.0)
            ));
        }
        settle(&nodes, "after the rescales", &mut identical_after_each);
    }

    // Every event exactly once, everywhere.
    let history = count_history(&endpoint, &prefix);
    let mut applied: Vec<u64> = nodes
        .iter()
        .filter_map(|n| n.status().map(|s| s.applied))
        .collect();
    applied.push(observer.status().feed.events_applied);
    // The restarted process replayed everything from revision 1 too.
    let missed: u64 = applied.iter().map(|&a| history.saturating_sub(a)).sum();
    let duplicated: u64 = applied.iter().map(|&a| a.saturating_sub(history)).sum();
    let skipped: u64 = nodes
        .iter()
        .filter_map(|n| n.status().map(|s| s.duplicates))
        .sum();
    let rosters_identical = identical_after_each.iter().all(|&ok| ok);
    let revisions_applied = observer.status().applied_revision;
    timeline.say(format!(
        "{history} events in etcd's history; per process missed {missed}, applied twice {duplicated} (repeats skipped: {skipped})"
    ));
    let healthy = rosters_identical && missed == 0 && duplicated == 0 && failover_ms.is_some();
    timeline.say(if healthy {
        "verdict: every process held identical rosters after every change, and applied every event exactly once"
    } else {
        "verdict: FAILED"
    });
    if args.json {
        let json = serde_json::json!({
            "nodes": total_nodes,
            "node_processes": args.nodes,
            "groups": spawned,
            "revisions_applied": revisions_applied,
            "rosters_identical": rosters_identical,
            "failover_ms": failover_ms,
            "recovery_ms": recovery_ms,
            "events_in_history": history,
            "events_missed": missed,
            "events_duplicated": duplicated,
            "replay_changes_per_sec": replay_rate,
        });
        println!("{json}");
    }
    drop(simulated);
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A one-shot tokio runtime for the coordinator's own etcd reads.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

async fn client(endpoint: &str) -> Option<etcd_client::Client> {
    etcd_client::Client::connect([endpoint], None).await.ok()
}

/// The revision of `key`'s last change, if it exists.
fn key_revision(endpoint: &str, key: String) -> Option<i64> {
    block_on(async {
        let mut c = client(endpoint).await?;
        let r = c.get(key, None).await.ok()?;
        r.kvs().first().map(|kv| kv.mod_revision())
    })
}

fn marker_revision(
    _observer: &ClusterRuntime,
    endpoint: &str,
    prefix: &str,
    node: u64,
) -> Option<i64> {
    key_revision(endpoint, format!("{prefix}/failed/{node}"))
}

fn node_key_revision(
    _observer: &ClusterRuntime,
    endpoint: &str,
    prefix: &str,
    node: u64,
) -> Option<i64> {
    key_revision(endpoint, format!("{prefix}/nodes/{node}"))
}

/// Writes `count` rescales (each group alternating between 2 and 3
/// replicas), 100 groups per transaction.
fn write_rescales(endpoint: &str, prefix: &str, groups: &[Arc<ReplicaGroup>], count: u32) -> u32 {
    block_on(async {
        let Some(mut c) = client(endpoint).await else {
            return 0;
        };
        let mut intents = Vec::new();
        for g in groups {
            let key = format!("{prefix}/groups/{}", g.group_id());
            if let Ok(r) = c.get(key.clone(), None).await {
                if let Some(kv) = r.kvs().first() {
                    if let Ok(intent) = serde_json::from_slice::<
                        replica_router::cluster::schema::GroupIntent,
                    >(kv.value())
                    {
                        intents.push((key, intent));
                    }
                }
            }
        }
        let mut written = 0;
        let mut round = 0u8;
        while written < count && !intents.is_empty() {
            round = round.wrapping_add(1);
            for chunk in intents.chunks(100) {
                let ops: Vec<_> = chunk
                    .iter()
                    .take((count - written) as usize)
                    .map(|(key, intent)| {
                        let value = replica_router::cluster::schema::GroupIntent {
                            replica_count: 2 + round % 2,
                            ..intent.clone()
                        };
                        etcd_client::TxnOp::put(
                            key.clone(),
                            serde_json::to_vec(&value).unwrap_or_default(),
                            None,
                        )
                    })
                    .collect();
                let n = ops.len() as u32;
                if n == 0 || c.txn(etcd_client::Txn::new().and_then(ops)).await.is_err() {
                    return written;
                }
                written += n;
            }
        }
        written
    })
}

/// Events under `prefix` in etcd's whole history.
fn count_history(endpoint: &str, prefix: &str) -> u64 {
    block_on(async {
        let Some(mut c) = client(endpoint).await else {
            return 0;
        };
        let Ok(now) = c.get(prefix, None).await else {
            return 0;
        };
        let now = now.header().map_or(0, |h| h.revision());
        let options = etcd_client::WatchOptions::new()
            .with_prefix()
            .with_start_revision(1);
        let Ok(mut stream) = c.watch(prefix, Some(options)).await else {
            return 0;
        };
        let (mut count, mut last) = (0, 0);
        while last < now {
            let Ok(Ok(Some(r))) =
                tokio::time::timeout(Duration::from_secs(2), stream.message()).await
            else {
                break;
            };
            for e in r.events() {
                count += 1;
                last = e.kv().map_or(last, |kv| kv.mod_revision());
            }
        }
        count
    })
}
