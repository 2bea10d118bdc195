//! `DaemonRuntime::for_node`: every process of a cluster places alike and
//! hosts only its own node's replicas.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use replica_router::*;
use replica_router_testkit::support::*;

/// One process per node 1..=n, each counting the daemons its factory creates.
fn processes(n: u64) -> Vec<(DaemonRuntime, Arc<AtomicUsize>)> {
    (1..=n)
        .map(|local| {
            let rt = DaemonRuntime::for_node(local, nodes(n, 2));
            let created = Arc::new(AtomicUsize::new(0));
            let c = Arc::clone(&created);
            rt.register_factory("count", move || {
                c.fetch_add(1, Ordering::SeqCst);
                Box::new(Echo)
            })
            .unwrap();
            rt.start().unwrap();
            (rt, created)
        })
        .collect()
}

#[test]
fn processes_applying_the_same_changes_hold_identical_rosters() {
    let procs = processes(5);
    let groups: Vec<Vec<ReplicaGroup>> = procs
        .iter()
        .map(|(rt, _)| {
            (0..4u8)
                .map(|g| {
                    let strategy = Strategy::ALL[g as usize];
                    ReplicaGroup::spawn(rt, "count", config(3, 100 + g, strategy)).unwrap()
                })
                .collect()
        })
        .collect();
    let digests = |procs: &[(DaemonRuntime, Arc<AtomicUsize>)]| -> Vec<u64> {
        procs
            .iter()
            .map(|(rt, _)| rt.roster_digest().unwrap())
            .collect()
    };
    let first = digests(&procs);
    assert!(first.windows(2).all(|w| w[0] == w[1]), "{first:x?}");

    // The same changes, in the same order, everywhere.
    for (p, (rt, _)) in procs.iter().enumerate() {
        rt.node_failed(2).unwrap();
        groups[p][1].scale_to(4).unwrap();
        rt.node_recovered(2).unwrap();
        groups[p][3].scale_to(2).unwrap();
    }
    let after = digests(&procs);
    assert!(after.windows(2).all(|w| w[0] == w[1]), "{after:x?}");
    assert_ne!(after[0], first[0], "the changes changed the rosters");
    for g in 0..4 {
        let replicas: Vec<_> = groups.iter().map(|gs| gs[g].replicas()).collect();
        assert!(replicas.windows(2).all(|w| w[0] == w[1]));
    }
}

#[test]
fn a_process_hosts_only_the_replicas_placed_on_its_node() {
    let procs = processes(4);
    let groups: Vec<ReplicaGroup> = procs
        .iter()
        .map(|(rt, _)| {
            ReplicaGroup::spawn(rt, "count", config(3, 110, Strategy::RoundRobin)).unwrap()
        })
        .collect();
    let members = groups[0].replicas();
    for (p, (rt, _)) in procs.iter().enumerate() {
        let local = p as u64 + 1;
        for m in &members {
            let result = rt.deliver(m.origin_hash, &Event::new("x"));
            if m.node_id == local {
                assert!(result.is_ok(), "node {local} hosts {m:?}: {result:?}");
            } else {
                assert_eq!(
                    result,
                    Err(DeliverError::HostedElsewhere {
                        origin_hash: m.origin_hash,
                        node_id: m.node_id
                    })
                );
            }
        }
    }
    // Each process created at most one daemon for its one local replica, plus
    // the probe every process creates to learn the kind's requirements.
    let created: usize = procs.iter().map(|(_, c)| c.load(Ordering::SeqCst)).sum();
    assert!(created <= 3 + procs.len(), "created {created}");
}

#[test]
fn dispatch_to_a_remote_replica_returns_the_event_with_its_node() {
    let procs = processes(3);
    let group =
        ReplicaGroup::spawn(&procs[0].0, "count", config(3, 111, Strategy::RoundRobin)).unwrap();
    let mut remote = 0;
    for _ in 0..3 {
        match group.dispatch(&RequestContext::new(), &Event::new("x")) {
            Ok(_) => {}
            Err(DispatchError::HostedElsewhere { node_id, .. }) => {
                assert_ne!(node_id, 1);
                remote += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        remote, 2,
        "round robin over 3 members: 2 of 3 live elsewhere"
    );
}

#[test]
fn failover_moves_hosting_between_processes() {
    let procs = processes(4);
    let groups: Vec<ReplicaGroup> = procs
        .iter()
        .map(|(rt, _)| {
            ReplicaGroup::spawn(rt, "count", config(3, 112, Strategy::RoundRobin)).unwrap()
        })
        .collect();
    let free = (1..=4u64)
        .find(|n| groups[0].replicas().iter().all(|m| m.node_id != *n))
        .unwrap();
    let victim = groups[0].replicas()[0].clone();
    for (rt, _) in &procs {
        rt.node_failed(victim.node_id).unwrap();
    }
    let moved = groups[0].replicas()[0].clone();
    assert_eq!(moved.origin_hash, victim.origin_hash);
    assert_eq!(moved.node_id, free);
    let host = &procs[(free - 1) as usize].0;
    assert!(host.deliver(moved.origin_hash, &Event::new("x")).is_ok());
    let old = &procs[(victim.node_id - 1) as usize].0;
    assert!(matches!(
        old.deliver(moved.origin_hash, &Event::new("x")),
        Err(DeliverError::HostedElsewhere { node_id, .. }) if node_id == free
    ));
}
