//! Loss-free dispatch: route, deliver, and re-route when the chosen replica
//! vanished in between.

use bytes::Bytes;
use thiserror::Error;

use super::roster::NoRoute;
use crate::error::{DeliverError, GroupError};

/// How many times `dispatch` routes one event before giving up: the first
/// route and up to three re-routes.
pub const MAX_DISPATCH_ATTEMPTS: u32 = 4;

/// Why [`ReplicaGroup::dispatch`](crate::ReplicaGroup::dispatch) returned the
/// event unprocessed, or why processing failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// No member could be chosen; the event was not processed.
    #[error("event not routed: {0}")]
    Route(GroupError),
    /// A live replica took the event and failed it (its error or panic); the
    /// event was processed once and is not retried.
    #[error("event failed: {0}")]
    Failed(DeliverError),
    /// Every replica chosen could not take the event (it was removed, its
    /// circuit opened, or it is the daemon dispatching on this very thread)
    /// `attempts` times in a row; the event was not processed.
    #[error(
        "event not delivered: {attempts} replicas chosen in a row could not take it; last: {last}"
    )]
    Exhausted {
        /// Routes tried.
        attempts: u32,
        /// What the last delivery attempt said.
        last: DeliverError,
    },
    /// The chosen replica runs in another node's process (cluster mode); the
    /// event was not processed here: forward it to `node_id`.
    #[error("event not delivered: replica {origin_hash:#018x} is hosted by node {node_id}")]
    HostedElsewhere {
        /// The replica chosen.
        origin_hash: u64,
        /// The node whose process hosts it.
        node_id: u64,
    },
    /// The runtime is shutting down; the event was not processed.
    #[error("event not delivered: runtime is shutting down")]
    ShuttingDown,
}

impl DispatchError {
    /// Whether the event reached a daemon (only [`DispatchError::Failed`]).
    pub fn was_processed(&self) -> bool {
        matches!(self, DispatchError::Failed(_))
    }
}

/// Runs `attempt` (one route, and a delivery to the replica it chose) until
/// the event is processed or cannot be: it re-routes while the chosen
/// replica vanished between the route and the delivery. Every outcome says
/// whether the event was processed: exactly once by a live replica, or not
/// at all.
pub(crate) fn dispatch(
    mut attempt: impl FnMut() -> Result<Result<Vec<Bytes>, DeliverError>, NoRoute>,
) -> Result<Vec<Bytes>, DispatchError> {
    let mut attempts = 0;
    loop {
        let delivered = match attempt() {
            Ok(delivered) => delivered,
            Err(NoRoute::ShuttingDown) => return Err(DispatchError::ShuttingDown),
            Err(why) => return Err(DispatchError::Route(GroupError::from(why))),
        };
        attempts += 1;
        match delivered {
            Ok(outputs) => return Ok(outputs),
            // Not processed: the replica left (or is resting) after the
            // route, or it is the daemon dispatching right now on this thread.
            Err(
                last @ (DeliverError::UnknownOrigin(_)
                | DeliverError::CircuitOpen(_)
                | DeliverError::Reentrant(_)),
            ) => {
                if attempts >= MAX_DISPATCH_ATTEMPTS {
                    return Err(DispatchError::Exhausted { attempts, last });
                }
            }
            Err(DeliverError::ShuttingDown) => return Err(DispatchError::ShuttingDown),
            Err(DeliverError::HostedElsewhere {
                origin_hash,
                node_id,
            }) => {
                return Err(DispatchError::HostedElsewhere {
                    origin_hash,
                    node_id,
                })
            }
            // Processed: the daemon failed it. Listed by name, so a new
            // `DeliverError` variant must be classified here to compile.
            Err(e @ (DeliverError::Daemon { .. } | DeliverError::Panicked { .. })) => {
                return Err(DispatchError::Failed(e))
            }
        }
    }
}
