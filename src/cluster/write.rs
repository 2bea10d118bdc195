//! One write of the cluster's state, and the wait until this process
//! applied it: both on the connection thread, so the blocking and the async
//! API share it and neither needs a thread of its own.

use std::sync::Arc;

use super::connection::classify;
use super::error::ClusterError;
use super::options::ClusterOptions;
use super::published::{Published, APPLY_TIMEOUT};

/// One write of the cluster's state: a put, or a delete when `value` is
/// `None`.
pub(crate) struct Write {
    pub(crate) key: String,
    pub(crate) value: Option<Vec<u8>>,
}

impl Write {
    /// Writes, then waits until `published` says this process applied it.
    /// Runs on the connection thread.
    pub(crate) async fn apply(
        self,
        mut client: etcd_client::Client,
        options: ClusterOptions,
        published: Arc<Published>,
    ) -> Result<(), ClusterError> {
        let header = match self.value {
            Some(value) => client
                .put(self.key, value, None)
                .await
                .map(|r| r.header().cloned()),
            None => client
                .delete(self.key, None)
                .await
                .map(|r| r.header().cloned()),
        }
        .map_err(|e| classify(&options, &e))?;
        let revision = header.map_or(0, |h| h.revision());
        if published.wait_for_async(revision, APPLY_TIMEOUT).await {
            Ok(())
        } else {
            Err(ClusterError::NotApplied {
                revision,
                waited: APPLY_TIMEOUT,
            })
        }
    }
}
