//! The writer's messages: the [`Command`]s callers send it, how a command
//! names a group ([`GroupRef`]), and what a handle to a group holds
//! ([`GroupHandle`]).

use super::node_table::GroupKey;
use crate::config::ReplicaGroupConfig;
use crate::error::{GroupError, RuntimeError};
use crate::node::NodeInfo;
use crate::route::Roster;
use crate::strategy::Strategy;
use crate::sync::channel::Sender;
use crate::sync::{Arc, ArcSwap};

/// Where a command's answer goes.
pub(crate) type Reply<T> = Sender<T>;

/// A group as a command names it: the writer's key, and the public id for
/// the errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupRef {
    pub(crate) key: GroupKey,
    pub(crate) group_id: u32,
}

/// What a handle to a group holds: how commands name it, its pinned kind
/// and strategy, and where its rosters are published.
#[derive(Debug, Clone)]
pub(crate) struct GroupHandle {
    pub(crate) group: GroupRef,
    pub(crate) kind: Arc<str>,
    pub(crate) strategy: Strategy,
    pub(crate) roster: Arc<ArcSwap<Roster>>,
}

/// A change for the writer to apply.
#[derive(Debug)]
pub(crate) enum Command {
    Spawn(
        Arc<str>,
        ReplicaGroupConfig,
        Reply<Result<GroupHandle, GroupError>>,
    ),
    Scale(GroupRef, u8, Reply<Result<(), GroupError>>),
    Remove(GroupRef, Reply<Result<(), GroupError>>),
    /// Every live group, in spawn order.
    Groups(Reply<Vec<GroupHandle>>),
    GroupNodeFailure(GroupRef, u64, Reply<Result<Vec<u8>, GroupError>>),
    GroupNodeRecovery(GroupRef, u64, Reply<Result<(), GroupError>>),
    AddNode(NodeInfo, Reply<Result<(), RuntimeError>>),
    NodeFailed(u64, Reply<Result<usize, RuntimeError>>),
    NodeRecovered(u64, Reply<Result<usize, RuntimeError>>),
    Digest(Reply<u64>),
    Shutdown(Reply<()>),
    /// The state placement depends on, for a cluster checkpoint.
    #[cfg(feature = "etcd")]
    Snapshot(Reply<crate::control::snapshot::WriterState>),
    /// Restores a checkpoint into a runtime with no nodes and no groups.
    #[cfg(feature = "etcd")]
    Restore(
        crate::control::snapshot::WriterState,
        Reply<Result<(), GroupError>>,
    ),
    /// Makes the writer panic, as a bug of its own would.
    #[cfg(test)]
    Crash,
}
