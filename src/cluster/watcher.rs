//! The watcher: a task of the connection thread. It finds where to start
//! (the newest checkpoint, or revision 1), watches the prefix from there,
//! and hands every response, in order, to the applier over a channel. It
//! never waits for the applier, so a slow factory never stalls the stream.
//! After a broken stream or an etcd restart it reconnects and resumes from
//! the last revision it handed on (the feed skips the repeats).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use etcd_client::{Client, EventType, GetOptions, SortOrder, SortTarget, WatchOptions};

use super::applier::{FeedInput, WatchedEvent};
use super::checkpoint::{load_checkpoint, Checkpoint};
use super::connection::classify;
use super::error::ClusterError;
use super::published::Published;
use super::schema::{checkpoints_prefix, parse_key, watch_prefix, Key};
use super::ClusterOptions;

const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The largest message accepted from etcd: a catch-up watch response or a
/// checkpoint can pass gRPC's default of 4 MiB.
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

/// How long a joining process keeps looking for a checkpoint newer than
/// etcd's compaction.
pub(crate) const START_PATIENCE: Duration = Duration::from_secs(10);

/// What the watcher needs.
pub(crate) struct Watcher {
    pub(crate) options: ClusterOptions,
    pub(crate) feed: Sender<FeedInput>,
    pub(crate) published: Arc<Published>,
}

/// Where a watch starts, and the checkpoint to hand on before its events.
struct Start {
    revision: i64,
    checkpoint: Option<Checkpoint>,
}

impl Watcher {
    /// Runs until the connection closes. `started` gets the start revision,
    /// or why no start is possible.
    pub(crate) async fn run(
        self,
        mut client: Client,
        started: std::sync::mpsc::SyncSender<Result<i64, ClusterError>>,
    ) {
        let start = match self.start(&mut client).await {
            Ok(start) => start,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let _ = started.send(Ok(start.revision));
        let mut pending = start.checkpoint.map(Box::new);
        let mut next = start.revision;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.follow(&mut client, &mut next, &mut pending).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(why, "cluster watch interrupted; resuming");
                    self.published.count_reconnect();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The newest usable checkpoint, and a start revision etcd still has
    /// the history of; waits for a newer checkpoint while the history after
    /// the newest one is compacted.
    async fn start(&self, client: &mut Client) -> Result<Start, ClusterError> {
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            let checkpoint = self.latest_checkpoint(client).await?;
            let revision = checkpoint.as_ref().map_or(1, |c| c.revision + 1);
            match self.compacted_after(client, revision).await? {
                None => {
                    return Ok(Start {
                        revision,
                        checkpoint,
                    })
                }
                Some(compacted) if Instant::now() >= deadline => {
                    return Err(ClusterError::HistoryCompacted {
                        checkpoint: revision - 1,
                        compacted,
                    })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn latest_checkpoint(
        &self,
        client: &mut Client,
    ) -> Result<Option<Checkpoint>, ClusterError> {
        let prefix = checkpoints_prefix(&self.options.prefix);
        let newest = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(1);
        let response = client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .get(prefix, Some(newest))
            .await
            .map_err(|e| classify(&self.options, &e))?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let Ok(Key::Checkpoint(revision)) = parse_key(&self.options.prefix, kv.key()) else {
            return Ok(None);
        };
        match load_checkpoint(self.options.secret.as_ref(), &key, revision, kv.value()) {
            Ok(checkpoint) => Ok(Some(checkpoint)),
            Err(e) => {
                tracing::error!(revision, %e, "newest checkpoint unusable; replaying the history");
                Ok(None)
            }
        }
    }

    /// etcd's compaction revision if the history from `revision` is gone.
    async fn compacted_after(
        &self,
        client: &mut Client,
        revision: i64,
    ) -> Result<Option<i64>, ClusterError> {
        let at = GetOptions::new()
            .with_prefix()
            .with_revision(revision)
            .with_count_only();
        let prefix = watch_prefix(&self.options.prefix);
        let error = match client.get(prefix.clone(), Some(at)).await {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let text = error.to_string();
        if text.contains("future revision") {
            // Nothing happened since `revision - 1`: nothing to replay.
            return Ok(None);
        }
        if !text.contains("compacted") {
            return Err(classify(&self.options, &error));
        }
        // A watch from a compacted revision names the compaction at once.
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision);
        let mut compacted = 0;
        if let Ok(mut stream) = client.watch(prefix, Some(options)).await {
            for _ in 0..2 {
                let wait = tokio::time::timeout(Duration::from_millis(500), stream.message());
                if let Ok(Ok(Some(r))) = wait.await {
                    if r.compact_revision() > 0 {
                        compacted = r.compact_revision();
                        break;
                    }
                }
            }
        }
        Ok(Some(compacted))
    }

    /// Follows one watch stream from `next`; `Ok` when the applier is
    /// gone, `Err` when the stream broke.
    async fn follow(
        &self,
        client: &mut Client,
        next: &mut i64,
        pending: &mut Option<Box<Checkpoint>>,
    ) -> Result<(), String> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(*next)
            .with_progress_notify()
            .with_fragment();
        let mut stream = client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .watch(watch_prefix(&self.options.prefix), Some(options))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let message = tokio::select! {
                _ = self.published.progress_wanted.notified() => {
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
                let compacted = response.compact_revision();
                let _ = self.feed.send(FeedInput::HistoryLost { compacted });
                return Ok(());
            }
            if response.canceled() {
                return Err(format!("watch canceled: {}", response.cancel_reason()));
            }
            let input = if response.events().is_empty() {
                if response.created() {
                    continue;
                }
                // A progress notification: every event up to here was sent.
                FeedInput::Progress(response.header().map_or(0, |h| h.revision()))
            } else {
                let events: Vec<WatchedEvent> = response
                    .events()
                    .iter()
                    .filter_map(|event| {
                        let kv = event.kv()?;
                        Some(WatchedEvent {
                            revision: kv.mod_revision(),
                            key: kv.key().to_vec(),
                            value: match event.event_type() {
                                EventType::Put => Some(kv.value().to_vec()),
                                EventType::Delete => None,
                            },
                        })
                    })
                    .collect();
                // Resume at the last revision handed on: the feed skips
                // the events of it that it already has.
                *next = events.last().map_or(*next, |e| e.revision);
                FeedInput::Events(events)
            };
            if let Some(checkpoint) = pending.take() {
                if self.feed.send(FeedInput::Restore(checkpoint)).is_err() {
                    return Ok(());
                }
            }
            if self.feed.send(input).is_err() {
                return Ok(());
            }
        }
    }
}
