//! Cluster mode against a real etcd on loopback, with node processes as real
//! OS processes: this test binary re-executes itself as a node
//! (`cluster_node_process`), which joins the cluster and reports its status
//! on stdout until its stdin closes or it is killed.

mod cluster_support;

use std::thread;
use std::time::{Duration, Instant};

use cluster_support::*;
use replica_router::cluster::{ClusterError, ClusterOptions, ClusterRuntime, NodeMembership};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::support::*;

/// The entry point of a node process; does nothing unless started by `Node`.
#[test]
#[ignore = "entry point of the node processes the other tests start"]
fn cluster_node_process() {
    node_process_main();
}

#[test]
fn three_processes_converge_to_identical_digests_and_host_their_own_replicas() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/converge";
    let (nodes, observer) =
        nodes_with_first_group(&etcd, prefix, 3, 0, [200; 32], 3, Strategy::RoundRobin);
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
    let (mut nodes, observer) =
        nodes_with_first_group(&etcd, prefix, 4, 0, [100; 32], 4, Strategy::RoundRobin);
    observer.scale_group(group_id_of([100; 32]), 3).unwrap();
    let groups = spawn_groups(&observer, 8, 3);
    eventually(10, "converged before the kill", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });

    let mut victim = nodes.remove(2);
    let victim_id = victim.id;
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
    nodes.push(Node::start(&etcd, prefix, victim_id, 0));
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

#[test]
fn watchers_resume_after_an_etcd_restart_with_nothing_missed_or_applied_twice() {
    let mut etcd = LocalEtcd::start().unwrap();
    let prefix = "/restart";
    let (nodes, observer) =
        nodes_with_first_group(&etcd, prefix, 3, 0, [90; 32], 3, Strategy::RoundRobin);
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
    // Applied events = the events etcd's history holds under the prefix
    // between the point each process started from and where it stands.
    let status = observer.status();
    let history = observer
        .history_events(status.feed.restored_from, status.feed.applied_revision)
        .unwrap();
    assert_eq!(
        status.feed.events_applied, history,
        "observer applied every event exactly once"
    );
    for n in &nodes {
        let s = n.status().unwrap();
        let history = observer
            .history_events(s.restored_from, s.revision)
            .unwrap();
        assert_eq!(s.applied, history, "node {} applied every event once", n.id);
    }
    assert!(status.reconnects > 0, "the watcher noticed the restart");
}

#[test]
fn flapping_within_the_debounce_window_causes_no_replacement() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/flap";
    let debounce = 4_000;
    let (mut nodes, observer) = nodes_with_first_group(
        &etcd,
        prefix,
        3,
        debounce,
        [80; 32],
        2,
        Strategy::RoundRobin,
    );
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
}

#[test]
fn a_group_removed_cluster_wide_is_removed_in_every_process_at_one_revision() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/remove";
    let (nodes, observer) =
        nodes_with_first_group(&etcd, prefix, 3, 0, [60; 32], 3, Strategy::ConsistentHash);
    let other = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    let gid = group_id_of([60; 32]);
    let theirs = other.group(gid).unwrap();
    let with_group = observer.status().digest;
    observer.remove_group(gid).unwrap();
    assert!(observer.group(gid).is_none());
    let now = observer.etcd_revision().unwrap();
    assert!(other.wait_for_revision(now, Duration::from_secs(5)));
    assert!(other.group(gid).is_none());
    assert_eq!(
        theirs.route_event(&RequestContext::new()),
        Err(GroupError::Removed)
    );
    eventually(10, "every process removed it", || {
        converged(&observer, &nodes.iter().collect::<Vec<_>>())
    });
    assert_ne!(observer.status().digest, with_group);
    assert_eq!(other.status().digest, observer.status().digest);
    assert_eq!(
        observer.remove_group(gid),
        Err(ClusterError::UnknownGroup(gid))
    );
    // The seed is free again: the same group can be spawned anew.
    let again = observer
        .spawn_group("echo", [60; 32], 2, Strategy::RoundRobin)
        .unwrap();
    assert_eq!(again.replica_count(), 2);
}

#[test]
fn malformed_and_unknown_version_values_are_skipped_and_counted() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/malformed";
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    let last = with_etcd(&etcd.endpoint(), |mut client| async move {
        let puts = [
            (format!("{prefix}/nodes/1"), "not json".to_owned()),
            (
                format!("{prefix}/groups/7"),
                r#"{"kind":"echo"}"#.to_owned(),
            ),
            (format!("{prefix}/strange/1"), "x".to_owned()),
            (
                format!("{prefix}/nodes/2"),
                r#"{"schema":1,"id":3,"weight":1,"instance":"x"}"#.to_owned(),
            ),
            (
                format!("{prefix}/nodes/4"),
                r#"{"schema":2,"id":4,"weight":1,"instance":"x"}"#.to_owned(),
            ),
        ];
        let mut last = 0;
        for (key, value) in puts {
            let r = client.put(key, value, None).await.unwrap();
            last = r.header().unwrap().revision();
        }
        last
    });
    assert!(observer.wait_for_revision(last, Duration::from_secs(5)));
    eventually(2, "the status is published", || {
        observer.status().applied_revision >= last
    });
    let status = observer.status();
    assert_eq!(status.feed.malformed, 4);
    assert_eq!(status.feed.unknown_version, 1);
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
    let options = ClusterOptions::new(format!("http://127.0.0.1:{port}"), "/nowhere")
        .with_timeout(Duration::from_millis(500));
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
