//! The applier: the thread that owns the feed. The watcher hands it what
//! etcd sent, in revision order, over a channel; it applies each change
//! through the runtime's writer (which runs the daemon factories) and
//! publishes the result. A slow factory delays only this thread: the watch
//! stream, the lease keep-alive and `status()` carry on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use etcd_client::{Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp};

use super::checkpoint::Checkpoint;
use super::connection::Jobs;
use super::feed::{Effect, Feed};
use super::published::Published;
use super::schema::{checkpoints_prefix, failed_key, node_key, FailureMarker};
use super::ClusterOptions;

/// One event under the prefix, as the watcher saw it.
#[derive(Debug, Clone)]
pub(crate) struct WatchedEvent {
    pub(crate) revision: i64,
    pub(crate) key: Vec<u8>,
    /// `None` for a delete.
    pub(crate) value: Option<Vec<u8>>,
}

/// What the watcher sends, in order.
#[derive(Debug)]
pub(crate) enum FeedInput {
    /// Start from this checkpoint (first, before any event).
    Restore(Box<Checkpoint>),
    /// The events of one watch response.
    Events(Vec<WatchedEvent>),
    /// etcd vouches every event up to this revision was sent.
    Progress(i64),
    /// etcd compacted history this process had not applied.
    HistoryLost { compacted: i64 },
}

/// How often the status (with its digest) is republished while busy.
const STATUS_EVERY: Duration = Duration::from_millis(50);

/// Starts the applier thread; it ends when the watcher's sender is gone.
pub(crate) fn spawn(
    mut feed: Feed,
    inputs: Receiver<FeedInput>,
    published: Arc<Published>,
    jobs: Jobs,
    options: ClusterOptions,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("replica-router-feed".into())
        .spawn(move || {
            let mut dirty = true;
            let mut digest = 0;
            let mut last_publish = Instant::now();
            let mut caught_up = 0;
            while let Ok(input) = inputs.recv() {
                dirty |= !matches!(input, FeedInput::Progress(_));
                let effects = match input {
                    FeedInput::Restore(checkpoint) => match feed.restore(*checkpoint) {
                        Ok(effects) => effects,
                        Err(why) => {
                            // Events applied on top of the empty state would
                            // diverge: stay frozen, and say so.
                            tracing::error!(why, "checkpoint not restored");
                            feed.stats.history_lost = true;
                            Vec::new()
                        }
                    },
                    FeedInput::Events(_) if feed.stats.history_lost => Vec::new(),
                    FeedInput::Events(events) => {
                        let mut effects = Vec::new();
                        for e in &events {
                            effects.extend(feed.apply(e.revision, &e.key, e.value.as_deref()));
                            caught_up = caught_up.max(e.revision);
                        }
                        effects
                    }
                    FeedInput::Progress(revision) => {
                        caught_up = caught_up.max(revision);
                        Vec::new()
                    }
                    FeedInput::HistoryLost { compacted } => {
                        feed.stats.history_lost = true;
                        tracing::error!(compacted, applied = feed.stats.applied_revision, "etcd compacted history this process had not applied; its rosters stay frozen until it restarts");
                        Vec::new()
                    }
                };
                for effect in effects {
                    perform(effect, &jobs, &options);
                }
                caught_up = caught_up.max(feed.stats.applied_revision);
                if inputs.is_empty() || last_publish.elapsed() >= STATUS_EVERY {
                    if dirty {
                        digest = feed.runtime().roster_digest().unwrap_or(0);
                        dirty = false;
                    }
                    published.set_status(caught_up, digest, feed.stats.clone());
                    last_publish = Instant::now();
                    // Only now: whoever waited for a revision then finds
                    // the status (and digest) of at least that revision.
                    published.caught_up_to(caught_up);
                }
            }
        })
        .map(|_| ())
}

/// Carries out an effect on the connection thread.
fn perform(effect: Effect, jobs: &Jobs, options: &ClusterOptions) {
    let options = options.clone();
    let outcome = match effect {
        Effect::NodeVanished { node, revision } => {
            jobs.spawn(move |client| declare_failure(client, options, node, revision))
        }
        Effect::WriteCheckpoint {
            key,
            value,
            designated,
        } => jobs.spawn(move |client| write_checkpoint(client, options, key, value, designated)),
    };
    if outcome.is_err() {
        tracing::debug!("connection closed; effect dropped");
    }
}

/// After the debounce window, writes node `node`'s failure marker if the
/// node is still gone and no marker was written since it vanished (both
/// checked by etcd in the same transaction, so one process writes it).
async fn declare_failure(
    mut client: etcd_client::Client,
    options: ClusterOptions,
    node: u64,
    vanished_at: i64,
) {
    tokio::time::sleep(options.debounce).await;
    let marker = serde_json::to_vec(&FailureMarker::new(vanished_at)).unwrap_or_default();
    let failed = failed_key(&options.prefix, node);
    let txn = Txn::new()
        .when([
            Compare::version(node_key(&options.prefix, node), CompareOp::Equal, 0),
            Compare::mod_revision(failed.clone(), CompareOp::Less, vanished_at),
        ])
        .and_then([TxnOp::put(failed, marker, None)]);
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

/// Writes a checkpoint if none was written for its revision, deleting the
/// older ones in the same transaction. A process that is not the designated
/// writer waits first, and writes only if the designated one did not.
async fn write_checkpoint(
    mut client: etcd_client::Client,
    options: ClusterOptions,
    key: String,
    value: Vec<u8>,
    designated: bool,
) {
    if !designated {
        tokio::time::sleep(options.lease_ttl * 2 + Duration::from_secs(1)).await;
        // Written already, or a newer one (which deleted it)?
        let newest = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(1);
        let covered = client
            .get(checkpoints_prefix(&options.prefix), Some(newest))
            .await
            .map(|r| r.kvs().first().is_some_and(|kv| kv.key() >= key.as_bytes()));
        if !matches!(covered, Ok(false)) {
            return;
        }
        tracing::info!(key, "the designated writer wrote no checkpoint; writing it");
    }
    let older = checkpoints_prefix(&options.prefix);
    let txn = Txn::new()
        .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(key.clone(), value, None),
            TxnOp::delete(
                older,
                Some(etcd_client::DeleteOptions::new().with_range(key.clone())),
            ),
        ]);
    if let Err(e) = client.txn(txn).await {
        tracing::warn!(key, %e, "checkpoint not written");
    }
}
