//! What a group reports about itself: its replicas ([`MemberInfo`]), their
//! live statistics ([`MemberStats`]) and its health ([`GroupHealth`]), all
//! read from one roster snapshot.

use std::fmt;
use std::time::Duration;

use crate::daemon::{Circuit, Replica};
use crate::identity::Hex;
use crate::sync::coarse_ms;

/// One replica of a group, as [`ReplicaGroup::replicas`](crate::ReplicaGroup::replicas)
/// reports it (the API calls a replica in a roster a *member*).
#[derive(Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The replica's index in the group.
    pub index: u8,
    /// The replica's routing address.
    pub origin_hash: u64,
    /// The node it is placed on.
    pub node_id: u64,
    /// Its ed25519 public key.
    pub entity_id_bytes: [u8; 32],
    /// Whether routing may pick it.
    pub healthy: bool,
}

impl fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberInfo")
            .field("index", &self.index)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("node_id", &self.node_id)
            .field("entity_id_bytes", &Hex(&self.entity_id_bytes))
            .field("healthy", &self.healthy)
            .finish()
    }
}

/// A group's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupHealth {
    /// Every replica is healthy.
    Healthy,
    /// Some replicas are healthy.
    Degraded {
        /// Healthy replicas.
        healthy: u8,
        /// All replicas.
        total: u8,
    },
    /// No replica is healthy.
    Dead,
}

/// A replica's circuit breaker, as [`MemberStats`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircuitState {
    /// Traffic flows.
    Closed,
    /// Repeated failures opened it: no traffic until the recovery window passes.
    Open,
    /// The window passed: one probe delivery is (or may be) under way.
    HalfOpen,
}

/// One replica's live statistics, as [`ReplicaGroup::stats`](crate::ReplicaGroup::stats)
/// reports them: the figures routing reads, for operators.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MemberStats {
    /// The replica's index in the group.
    pub index: u8,
    /// The replica's routing address.
    pub origin_hash: u64,
    /// The node it is placed on.
    pub node_id: u64,
    /// Whether routing may pick it.
    pub healthy: bool,
    /// Deliveries under way.
    pub in_flight: u32,
    /// Events processed (succeeded or failed) since it was placed here.
    pub processed: u64,
    /// Events it failed (an error or a panic).
    pub errors: u64,
    /// The latency estimate the latency-aware strategies use; `None` before
    /// the first measurement.
    pub latency: Option<Duration>,
    /// Its circuit breaker.
    pub circuit: CircuitState,
}

impl MemberStats {
    pub(crate) fn of(replica: &Replica, healthy: bool) -> Self {
        let stats = replica.stats();
        MemberStats {
            index: replica.index(),
            origin_hash: replica.origin_hash(),
            node_id: replica.node_id(),
            healthy,
            in_flight: stats.in_flight(),
            processed: stats.processed(),
            errors: stats.errors(),
            latency: match stats.latency_at(coarse_ms(), replica.settings().decay) {
                ns if ns > 0.0 => Some(Duration::from_nanos(ns as u64)),
                _ => None,
            },
            circuit: match stats.circuit() {
                Circuit::Closed => CircuitState::Closed,
                Circuit::Open => CircuitState::Open,
                Circuit::HalfOpen => CircuitState::HalfOpen,
            },
        }
    }
}
