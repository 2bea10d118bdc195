//! The watcher: one ordered feed per process. It watches the prefix from the
//! revision after the last one applied, hands every event to the feed in
//! order, and after a broken stream or an etcd restart reconnects and
//! resumes from the last applied revision, so no event is missed and none
//! is applied twice (the feed skips any the resumed watch repeats).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, EventType, GetOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::watch;

use super::feed::{Change, Effect};
use super::schema::{failed_key, node_key, FailureMarker};
use super::shared::Shared;
use super::{connect, ClusterOptions};

const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub(crate) async fn run(
    options: ClusterOptions,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        if !first {
            shared.count_reconnect();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        first = false;
        let client = match connect(&options).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(%e, "cluster watcher cannot reach etcd; retrying");
                continue;
            }
        };
        match follow(&options, &shared, client, &mut stop).await {
            Ok(()) => return,
            Err(why) => {
                tracing::warn!(
                    why,
                    "cluster watch interrupted; resuming from the last applied revision"
                );
                backoff = Duration::from_millis(50);
            }
        }
    }
}

/// Follows one watch stream; `Ok` when stopped, `Err` when it broke.
async fn follow(
    options: &ClusterOptions,
    shared: &Arc<Shared>,
    mut client: Client,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let start = shared.applied_revision() + 1;
    let watch_options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start)
        .with_progress_notify();
    let mut stream = client
        .watch(options.prefix.as_bytes(), Some(watch_options))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = shared.progress_wanted.notified() => {
                stream.request_progress().await.map_err(|e| e.to_string())?;
                continue;
            }
            message = stream.message() => message,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => return Err("watch stream ended".into()),
            Err(e) => return Err(e.to_string()),
        };
        if response.compact_revision() > 0 {
            apply_snapshot(options, shared, &mut client).await?;
            return Err(format!(
                "history compacted at {}",
                response.compact_revision()
            ));
        }
        if response.canceled() {
            return Err(format!("watch canceled: {}", response.cancel_reason()));
        }
        if response.events().is_empty() && !response.created() {
            // A progress notification: every event up to here was sent.
            if let Some(header) = response.header() {
                shared.progressed(header.revision());
            }
            continue;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let change = match event.event_type() {
                EventType::Put => Change::Put {
                    key: kv.key(),
                    value: kv.value(),
                },
                EventType::Delete => Change::Delete { key: kv.key() },
            };
            if let Effect::NodeVanished { node, revision } = shared.apply(kv.mod_revision(), change)
            {
                let (options, shared, client) =
                    (options.clone(), Arc::clone(shared), client.clone());
                tokio::spawn(declare_failure(options, shared, client, node, revision));
            }
        }
    }
}

/// When the history before `start` is gone, applies the current state in
/// `mod_revision` order: the best a late joiner can do.
async fn apply_snapshot(
    options: &ClusterOptions,
    shared: &Arc<Shared>,
    client: &mut Client,
) -> Result<(), String> {
    tracing::warn!("etcd compacted the history; applying the current state, rosters may differ from older processes");
    let response = client
        .get(
            options.prefix.as_bytes(),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut kvs: Vec<_> = response.kvs().iter().collect();
    kvs.sort_by_key(|kv| kv.mod_revision());
    for kv in kvs {
        let change = Change::Put {
            key: kv.key(),
            value: kv.value(),
        };
        shared.apply(kv.mod_revision(), change);
    }
    Ok(())
}

/// After the debounce window, writes node `node`'s failure marker if the
/// node is still gone (checked by etcd in the same transaction).
async fn declare_failure(
    options: ClusterOptions,
    shared: Arc<Shared>,
    mut client: Client,
    node: u64,
    vanished_at: i64,
) {
    tokio::time::sleep(options.debounce).await;
    if !shared.awaits_failure(node) {
        return;
    }
    let marker = match serde_json::to_vec(&FailureMarker { vanished_at }) {
        Ok(m) => m,
        Err(_) => return,
    };
    let txn = Txn::new()
        .when([Compare::version(
            node_key(&options.prefix, node),
            CompareOp::Equal,
            0,
        )])
        .and_then([TxnOp::put(failed_key(&options.prefix, node), marker, None)]);
    for _ in 0..5 {
        match client.txn(txn.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(node, %e, "failure marker not written; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
