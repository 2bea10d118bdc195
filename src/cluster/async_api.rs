//! The async twins of the blocking calls. Writes run on the connection
//! thread and answer over a oneshot channel; `join_async` and
//! `observe_async` run their blocking twins on a short-lived thread. Either
//! way the caller's executor (tokio or any other) never blocks.

use std::sync::Arc;

use super::error::ClusterError;
use super::options::ClusterOptions;
use super::process::ClusterRuntime;
use crate::{DaemonRuntime, NodeInfo, ReplicaGroup, RuntimeError, Strategy};

/// Runs `f` on a thread of its own and awaits what it returns.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClusterError> + Send + 'static,
) -> Result<T, ClusterError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replica-router-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| ClusterError::Etcd(format!("cannot start a thread: {e}")))?;
    rx.await.unwrap_or(Err(ClusterError::Closed))
}

impl ClusterRuntime {
    /// [`join`](Self::join), without blocking the executor.
    pub async fn join_async(
        options: ClusterOptions,
        node: NodeInfo,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError> + Send + 'static,
    ) -> Result<ClusterRuntime, ClusterError> {
        off_thread(move || ClusterRuntime::join(options, node, register)).await
    }

    /// [`observe`](Self::observe), without blocking the executor.
    pub async fn observe_async(
        options: ClusterOptions,
        register: impl FnOnce(&DaemonRuntime) -> Result<(), RuntimeError> + Send + 'static,
    ) -> Result<ClusterRuntime, ClusterError> {
        off_thread(move || ClusterRuntime::observe(options, register)).await
    }

    /// [`spawn_group`](Self::spawn_group), without blocking the executor.
    pub async fn spawn_group_async(
        &self,
        kind: &str,
        seed: [u8; 32],
        replica_count: u8,
        strategy: Strategy,
    ) -> Result<Arc<ReplicaGroup>, ClusterError> {
        let (group_id, write) = self
            .inner
            .intent_write(kind, seed, replica_count, strategy)?;
        self.inner.write_async(write).await?;
        self.inner.spawned(group_id)
    }

    /// [`scale_group`](Self::scale_group), without blocking the executor.
    pub async fn scale_group_async(
        &self,
        group_id: u32,
        replica_count: u8,
    ) -> Result<(), ClusterError> {
        let write = self.inner.scale_write(group_id, replica_count)?;
        self.inner.write_async(write).await?;
        self.inner.scaled(group_id, replica_count)
    }

    /// [`remove_group`](Self::remove_group), without blocking the executor.
    pub async fn remove_group_async(&self, group_id: u32) -> Result<(), ClusterError> {
        let write = self.inner.remove_write(group_id)?;
        self.inner.write_async(write).await
    }
}
