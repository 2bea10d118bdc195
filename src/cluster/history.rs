//! Counting the history etcd holds, for diagnostics and tests.

use etcd_client::WatchOptions;

use super::connection::classify;
use super::error::ClusterError;
use super::process::ClusterRuntime;
use super::schema::watch_prefix;

impl ClusterRuntime {
    /// The number of events under the prefix with a revision in
    /// `(after, through]` that etcd's history holds, for diagnostics and
    /// tests: a process that started from checkpoint `after` (0: from the
    /// start) and applied up to `through` applied exactly these. Fails if
    /// etcd compacted that history.
    pub fn history_events(&self, after: i64, through: i64) -> Result<u64, ClusterError> {
        let options = self.inner.options.clone();
        let patience = options.timeout * 10;
        self.inner
            .connection
            .jobs()
            .call_within(patience, move |client| async move {
                let from = WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(after + 1)
                    .with_fragment();
                let mut stream = client
                    .watch_client()
                    .max_decoding_message_size(super::watcher::MAX_MESSAGE)
                    .watch(watch_prefix(&options.prefix), Some(from))
                    .await
                    .map_err(|e| classify(&options, &e))?;
                let mut count = 0;
                loop {
                    // etcd answers a progress request once every earlier
                    // event was sent: the end of the history, however
                    // sparse the prefix's revisions.
                    stream.request_progress().await.ok();
                    let next = tokio::time::timeout(options.timeout, stream.message()).await;
                    let Ok(Ok(Some(r))) = next else {
                        return Err(ClusterError::Etcd("the history watch ended early".into()));
                    };
                    if r.compact_revision() > 0 {
                        return Err(ClusterError::HistoryCompacted {
                            checkpoint: after,
                            compacted: r.compact_revision(),
                        });
                    }
                    let revisions = r
                        .events()
                        .iter()
                        .filter_map(|e| e.kv().map(|kv| kv.mod_revision()));
                    let mut past_end = false;
                    for revision in revisions {
                        if revision <= through {
                            count += 1;
                        } else {
                            past_end = true;
                        }
                    }
                    let progress = r.events().is_empty() && !r.created();
                    let vouched = r.header().map_or(0, |h| h.revision());
                    if past_end || (progress && vouched >= through) {
                        return Ok(count);
                    }
                }
            })
    }
}
