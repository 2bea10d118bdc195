//! Counting the history etcd holds, for diagnostics and tests.

use etcd_client::WatchOptions;

use super::connection::classify;
use super::error::ClusterError;
use super::process::ClusterRuntime;
use super::schema::watch_prefix;

impl ClusterRuntime {
    /// The number of events under the prefix with a revision above `after`
    /// that etcd's history holds, for diagnostics and tests: a process that
    /// started from checkpoint `after` applied exactly these. Fails if etcd
    /// compacted that history.
    pub fn history_events(&self, after: i64) -> Result<u64, ClusterError> {
        let options = self.inner.options.clone();
        let now = self.etcd_revision()?;
        let patience = options.timeout * 10;
        self.inner
            .connection
            .jobs()
            .call_within(patience, move |mut client| async move {
                let from = WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(after + 1);
                let mut stream = client
                    .watch(watch_prefix(&options.prefix), Some(from))
                    .await
                    .map_err(|e| classify(&options, &e))?;
                let (mut count, mut last) = (0, after);
                while last < now {
                    let next = tokio::time::timeout(options.timeout, stream.message()).await;
                    let Ok(Ok(Some(r))) = next else { break };
                    if r.compact_revision() > 0 {
                        return Err(ClusterError::HistoryCompacted {
                            checkpoint: after,
                            compacted: r.compact_revision(),
                        });
                    }
                    for e in r.events() {
                        count += 1;
                        last = e.kv().map_or(last, |kv| kv.mod_revision());
                    }
                    if r.events().is_empty() && !r.created() {
                        break;
                    }
                }
                Ok(count)
            })
    }
}
