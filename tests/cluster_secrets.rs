//! No readable secrets in etcd (issue 14, point 2): seeds are stored only
//! sealed under the cluster secret, bound to the group's key; a process with
//! the wrong secret applies nothing it cannot open and counts it; without a
//! secret `spawn_group` is a typed error; unknown versions are refused.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;
use replica_router::cluster::{ClusterError, ClusterOptions, ClusterRuntime, NodeMembership};
use replica_router::*;
use replica_router_testkit::etcd::LocalEtcd;
use replica_router_testkit::support::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every value stored under `prefix`.
fn stored_values(endpoint: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let prefix = prefix.to_owned();
    with_etcd(endpoint, |mut c| async move {
        let all = etcd_client::GetOptions::new().with_prefix();
        let r = c.get(prefix, Some(all)).await.unwrap();
        r.kvs()
            .iter()
            .map(|kv| (kv.key_str().unwrap().to_owned(), kv.value().to_vec()))
            .collect()
    })
}

fn three_nodes(etcd: &LocalEtcd, prefix: &str) -> Vec<NodeMembership> {
    (1..=3)
        .map(|id| NodeMembership::claim(&options(etcd, prefix, 0), &NodeInfo::new(id)).unwrap())
        .collect()
}

#[test]
fn seeds_and_checkpoints_never_reach_etcd_readably() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/sealed";
    let _nodes = three_nodes(&etcd, prefix);
    let options = options(&etcd, prefix, 0).with_checkpoint_every(5);
    // A node process of its own, so that it writes checkpoints.
    let node = ClusterRuntime::join(options.clone(), NodeInfo::new(0), register).unwrap();
    let seeds: Vec<[u8; 32]> = (1..=12u8).map(|s| [s.wrapping_mul(37); 32]).collect();
    for seed in &seeds {
        node.spawn_group("echo", *seed, 2, Strategy::ConsistentHash)
            .unwrap();
    }
    eventually(10, "a checkpoint was written", || {
        stored_values(&etcd.endpoint(), prefix)
            .iter()
            .any(|(k, _)| k.contains("/checkpoints/"))
    });
    for (key, value) in stored_values(&etcd.endpoint(), prefix) {
        for seed in &seeds {
            assert!(
                !value.windows(32).any(|w| w == seed),
                "{key} holds a raw seed"
            );
            let text = String::from_utf8_lossy(&value).to_lowercase();
            assert!(!text.contains(&hex(seed)), "{key} holds a hex seed");
        }
        if key.contains("/groups/") {
            let text = String::from_utf8(value).unwrap();
            assert!(text.contains("\"schema\":1"), "{text}");
            assert!(text.contains("\"strategy\":\"consistent_hash\""), "{text}");
            assert!(text.contains("xchacha20poly1305"), "{text}");
        }
    }
}

#[test]
fn a_process_with_the_wrong_secret_applies_nothing_it_cannot_open_and_says_so() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/wrong-secret";
    let _nodes = three_nodes(&etcd, prefix);
    let right = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    eventually(10, "nodes seen", || {
        right
            .spawn_group("echo", [1; 32], 3, Strategy::RoundRobin)
            .is_ok()
    });
    spawn_groups(&right, 5, 2);
    let wrong_options = options(&etcd, prefix, 0).with_secret([0xee; 32]);
    let wrong = ClusterRuntime::observe(wrong_options, register).unwrap();
    let status = wrong.status();
    assert!(
        wrong.groups().is_empty(),
        "no group derived from a seed it cannot open"
    );
    assert!(status.feed.unopenable >= 6, "{:?}", status.feed);
    // Its own writes are sealed under its own secret: the others refuse them.
    wrong
        .spawn_group("echo", [99; 32], 2, Strategy::Random)
        .unwrap();
    let now = right.etcd_revision().unwrap();
    assert!(right.wait_for_revision(now, Duration::from_secs(5)));
    assert!(right.group(group_id_of([99; 32])).is_none());
    assert!(right.status().feed.unopenable >= 1);
}

#[test]
fn without_a_secret_spawning_is_a_typed_error_and_nothing_is_written() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/no-secret";
    let _nodes = three_nodes(&etcd, prefix);
    let options = ClusterOptions::new(etcd.endpoint(), prefix);
    let observer = ClusterRuntime::observe(options, register).unwrap();
    assert_eq!(
        observer
            .spawn_group("echo", [3; 32], 2, Strategy::RoundRobin)
            .unwrap_err(),
        ClusterError::NoSecret
    );
    assert!(stored_values(&etcd.endpoint(), prefix)
        .iter()
        .all(|(k, _)| !k.contains("/groups/")));
}

#[test]
fn a_sealed_seed_moved_to_another_group_or_of_an_unknown_version_is_refused() {
    let etcd = LocalEtcd::start().unwrap();
    let prefix = "/moved";
    let _nodes = three_nodes(&etcd, prefix);
    let observer = ClusterRuntime::observe(options(&etcd, prefix, 0), register).unwrap();
    eventually(10, "nodes seen", || {
        observer
            .spawn_group("echo", [4; 32], 2, Strategy::RoundRobin)
            .is_ok()
    });
    let gid = group_id_of([4; 32]);
    let before = observer.status().digest;
    let (key, value) = stored_values(&etcd.endpoint(), prefix)
        .into_iter()
        .find(|(k, _)| k.ends_with(&format!("/groups/{gid}")))
        .unwrap();
    let text = String::from_utf8(value.clone()).unwrap();
    let other = format!("{prefix}/groups/{}", gid.wrapping_add(1));
    let last = with_etcd(&etcd.endpoint(), |mut c| async move {
        c.put(other, value, None).await.unwrap();
        let future = text.replace("\"schema\":1", "\"schema\":2");
        let r = c.put(key, future, None).await.unwrap();
        r.header().unwrap().revision()
    });
    assert!(observer.wait_for_revision(last, Duration::from_secs(5)));
    eventually(2, "the status is published", || {
        observer.status().applied_revision >= last
    });
    let status = observer.status();
    assert_eq!(status.feed.unopenable, 1, "{:?}", status.feed);
    assert_eq!(status.feed.unknown_version, 1, "{:?}", status.feed);
    assert_eq!(status.digest, before, "nothing applied");
    assert_eq!(observer.group(gid).unwrap().replica_count(), 2);
}
