//! Cluster mode against a real etcd on loopback, with node processes as real
//! OS processes: this test binary re-executes itself as a node
//! (`cluster_node_process`), which joins the cluster and reports its status
//! on stdout until its stdin closes or it is killed.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use replica_router::cluster::{ClusterError, ClusterOptions, ClusterRuntime, NodeMembership};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::process::{report_status, ReportingProcess};
use replica_router_testkit::support::*;

fn register(rt: &DaemonRuntime) -> Result<(), RuntimeError> {
    rt.register_factory("echo", || Box::new(Echo))
}

fn options(etcd: &LocalEtcd, prefix: &str, debounce_ms: u64) -> ClusterOptions {
    ClusterOptions {
        debounce: Duration::from_millis(debounce_ms),
        ..ClusterOptions::new(etcd.endpoint(), prefix)
    }
}

/// The entry point of a node process; does nothing unless started by `Node`.
#[test]
#[ignore = "entry point of the node processes the other tests start"]
fn cluster_node_process() {
    let Ok(endpoint) = std::env::var("RR_ETCD") else {
        return;
    };
    let prefix = std::env::var("RR_PREFIX").unwrap();
    let node: u64 = std::env::var("RR_NODE").unwrap().parse().unwrap();
    let debounce: u64 = std::env::var("RR_DEBOUNCE_MS").unwrap().parse().unwrap();
    let options = ClusterOptions {
        debounce: Duration::from_millis(debounce),
        ..ClusterOptions::new(endpoint, prefix)
    };
    let info = NodeInfo::new(node).with_zone(&format!("z{}", node % 2));
    let process = ClusterRuntime::join(options, info, register).expect("join");
    // Report until the parent closes stdin.
    report_status(Duration::from_millis(20), || {
        let st = process.status();
        let revision = st.applied_revision.max(0) as u64;
        vec![revision, st.digest, st.feed.events_applied]
    });
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Status {
    revision: i64,
    digest: u64,
    applied: u64,
}

/// A node process.
struct Node {
    id: u64,
    process: ReportingProcess,
}

impl Node {
    fn start(etcd: &LocalEtcd, prefix: &str, id: u64, debounce_ms: u64) -> Node {
        let process = ReportingProcess::start(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "cluster_node_process",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("RR_ETCD", etcd.endpoint())
                .env("RR_PREFIX", prefix)
                .env("RR_NODE", id.to_string())
                .env("RR_DEBOUNCE_MS", debounce_ms.to_string())
                .stderr(Stdio::null()),
        )
        .unwrap();
        Node { id, process }
    }

    fn status(&self) -> Option<Status> {
        let [revision, digest, applied] = self.process.last_report()?[..] else {
            return None;
        };
        Some(Status {
            revision: revision as i64,
            digest,
            applied,
        })
    }

    /// SIGKILL: no lease revoke, no goodbye.
    fn kill(&mut self) {
        self.process.kill();
    }
}

/// Every node process and the observer at etcd's revision, with one digest.
fn converged(observer: &ClusterRuntime, nodes: &[&Node]) -> bool {
    let Ok(now) = observer.etcd_revision() else {
        return false;
    };
    let mine = observer.status();
    mine.applied_revision == now
        && nodes.iter().all(|n| {
            n.status().is_some_and(|s| {
                s.revision == now
                    && s.digest == mine.digest
                    && s.applied == mine.feed.events_applied
            })
        })
}

fn spawn_groups(observer: &ClusterRuntime, n: u8, replicas: u8) -> Vec<Arc<ReplicaGroup>> {
    (0..n)
        .map(|g| {
            let strategy = Strategy::ALL[g as usize % Strategy::ALL.len()];
            observer
                .spawn_group("echo", [g + 1; 32], replicas, strategy)
                .unwrap()
        })
        .collect()
}

#[test]
fn three_processes_converge_to_identical_digests_and_host_their_own_replicas() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/converge";
    let nodes: Vec<Node> = (1..=3)
        .map(|id| Node::start(&etcd, prefix, id, 0))
        .collect();
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    eventually(20, "three nodes joined", || {
        observer.runtime().roster_digest().is_ok()
            && observer
                .spawn_group("echo", [200; 32], 3, Strategy::RoundRobin)
                .is_ok()
    });
    let groups = spawn_groups(&observer, 10, 2);
    eventually(10, "every process at the same revision and digest", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    // The observer hosts nothing: every delivery names the hosting node.
    for g in &groups {
        let m = &g.replicas()[0];
        assert!(matches!(
            observer.runtime().deliver(m.origin_hash, &Event::new("x")),
            Err(DeliverError::HostedElsewhere { node_id, .. }) if node_id == m.node_id
        ));
    }
}

#[test]
fn sigkill_fails_the_node_in_every_survivor_within_ttl_plus_one_second_and_restart_recovers() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/sigkill";
    let mut nodes: Vec<Node> = (1..=4)
        .map(|id| Node::start(&etcd, prefix, id, 0))
        .collect();
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    eventually(20, "four nodes joined", || {
        observer
            .spawn_group("echo", [100; 32], 4, Strategy::RoundRobin)
            .is_ok()
    });
    observer.scale_group(group_id_of([100; 32]), 3).unwrap();
    let groups = spawn_groups(&observer, 8, 3);
    eventually(10, "converged before the kill", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });

    let victim = nodes.remove(2);
    let victim_id = victim.id;
    let mut victim = victim;
    let killed = Instant::now();
    victim.kill();
    eventually(5, "the observer failed the victim's node", || {
        groups.iter().all(|g| {
            g.replicas()
                .iter()
                .all(|m| m.node_id != victim_id && m.healthy)
        })
    });
    let failover = killed.elapsed();
    assert!(
        failover <= Duration::from_millis(2_000),
        "failover took {failover:?} (lease 1 s + 1 s)"
    );
    eventually(5, "survivors agree after the failover", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });

    // Restart: the node joins again (recovery), every process agrees.
    let back = Node::start(&etcd, prefix, victim_id, 0);
    nodes.push(back);
    eventually(15, "converged after the restart", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    let placed_on_victim = observer
        .spawn_group("echo", [150; 32], 4, Strategy::RoundRobin)
        .unwrap();
    assert!(placed_on_victim
        .replicas()
        .iter()
        .any(|m| m.node_id == victim_id));
}

fn group_id_of(seed: [u8; 32]) -> u32 {
    u32::from_le_bytes(blake3::hash(&seed).as_bytes()[..4].try_into().unwrap())
}

#[test]
fn watchers_resume_after_an_etcd_restart_with_nothing_missed_or_applied_twice() {
    let mut etcd = LocalEtcd::start().unwrap();
    let prefix = "/restart";
    let nodes: Vec<Node> = (1..=3)
        .map(|id| Node::start(&etcd, prefix, id, 0))
        .collect();
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    eventually(20, "nodes joined", || {
        observer
            .spawn_group("echo", [90; 32], 3, Strategy::RoundRobin)
            .is_ok()
    });
    spawn_groups(&observer, 5, 2);
    etcd.restart().unwrap();
    // Writes after the restart, as soon as etcd answers again.
    eventually(20, "writes accepted after the restart", || {
        observer
            .spawn_group("echo", [91; 32], 2, Strategy::Random)
            .is_ok()
    });
    spawn_groups(&observer, 10, 3);
    eventually(20, "every process caught up after the restart", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    // Applied events = the events etcd's history holds under the prefix.
    let history = count_history(&etcd, prefix);
    let status = observer.status();
    assert_eq!(
        status.feed.events_applied, history,
        "observer applied every event exactly once"
    );
    for n in &nodes {
        assert_eq!(
            n.status().unwrap().applied,
            history,
            "node {} applied every event once",
            n.id
        );
    }
    assert!(status.reconnects > 0, "the watcher noticed the restart");
}

/// Events under `prefix` in etcd's whole history.
fn count_history(etcd: &LocalEtcd, prefix: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .unwrap();
        let now = client
            .get(prefix, None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let options = etcd_client::WatchOptions::new()
            .with_prefix()
            .with_start_revision(1);
        let mut stream = client.watch(prefix, Some(options)).await.unwrap();
        let mut count = 0;
        let mut last = 0;
        while last < now {
            let Ok(Ok(Some(r))) =
                tokio::time::timeout(Duration::from_secs(2), stream.message()).await
            else {
                break;
            };
            for e in r.events() {
                count += 1;
                last = e.kv().unwrap().mod_revision();
            }
            if r.events().is_empty() && last >= now {
                break;
            }
        }
        count
    })
}

#[test]
fn flapping_within_the_debounce_window_causes_no_replacement() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/flap";
    let debounce = 4_000;
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node::start(&etcd, prefix, id, debounce))
        .collect();
    let observer = ClusterRuntime::observe(options(&etcd, prefix, debounce), register).unwrap();
    eventually(20, "nodes joined", || {
        observer
            .spawn_group("echo", [80; 32], 2, Strategy::RoundRobin)
            .is_ok()
    });
    let groups = spawn_groups(&observer, 6, 2);
    let before: Vec<_> = groups.iter().map(|g| g.replicas()).collect();
    let flapper = nodes[0].id;
    nodes[0].kill();
    // The restarted process waits for the old lease to expire, then joins:
    // within the 4 s window.
    nodes[0] = Node::start(&etcd, prefix, flapper, debounce);
    eventually(15, "converged after the flap", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    thread::sleep(Duration::from_millis(debounce + 500));
    let after: Vec<_> = groups.iter().map(|g| g.replicas()).collect();
    assert_eq!(
        before, after,
        "a node back within the debounce window moved nothing"
    );
    assert!(observer.status().feed.events_applied > 0);
}

#[test]
fn malformed_values_are_skipped_and_counted() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/malformed";
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let last = rt.block_on(async {
        let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .unwrap();
        client
            .put(format!("{prefix}/nodes/1"), "not json", None)
            .await
            .unwrap();
        client
            .put(format!("{prefix}/groups/7"), r#"{"kind":"echo"}"#, None)
            .await
            .unwrap();
        client
            .put(format!("{prefix}/strange/1"), "x", None)
            .await
            .unwrap();
        let r = client
            .put(
                format!("{prefix}/nodes/2"),
                r#"{"id":3,"instance":"x"}"#,
                None,
            )
            .await
            .unwrap();
        r.header().unwrap().revision()
    });
    assert!(observer.wait_for_revision(last, Duration::from_secs(5)));
    let status = observer.status();
    assert_eq!(status.feed.malformed, 4);
    assert_eq!(
        status.digest,
        DaemonRuntime::new([]).roster_digest().unwrap(),
        "nothing applied"
    );
}

#[test]
fn a_second_process_claiming_a_live_node_id_is_refused() {
    let etcd = LocalEtcd::start().unwrap();
    let opts = options(&etcd, "/dup", 0);
    let holder = NodeMembership::claim(&opts, &NodeInfo::new(5)).unwrap();
    let started = Instant::now();
    let err = NodeMembership::claim(&opts, &NodeInfo::new(5)).unwrap_err();
    assert!(
        matches!(&err, ClusterError::DuplicateNode { node_id: 5, holder: h } if h == holder.instance()),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Once the holder leaves, the id can be claimed.
    holder.leave();
    NodeMembership::claim(&opts, &NodeInfo::new(5)).unwrap();
}

#[test]
fn unreachable_etcd_is_a_typed_error_in_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ClusterOptions {
        timeout: Duration::from_millis(500),
        ..ClusterOptions::new(format!("http://127.0.0.1:{port}"), "/nowhere")
    };
    let started = Instant::now();
    let err = ClusterRuntime::observe(options, register).unwrap_err();
    assert!(
        matches!(&err, ClusterError::Unreachable { endpoint, .. } if endpoint.contains(&port.to_string())),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
