//! Daemons, the events they process, and the replica that runs one daemon.

mod contained;
mod replica;
mod stats;

use std::time::Duration;

use bytes::Bytes;

use crate::error::DaemonError;
use crate::node::CapabilityFilter;

pub(crate) use contained::{contain, Daemon};

/// What every replica of a group shares: the user's settings, and what the
/// group's strategy needs measured on each delivery.
#[derive(Debug)]
pub(crate) struct HostSettings {
    pub(crate) config: DaemonHostConfig,
    /// Latency is measured on one delivery in this many (a power of two):
    /// on every one for the strategies that route on latency, on a sample
    /// otherwise (for `ReplicaGroup::stats`), sparing two clock reads.
    pub(crate) latency_every: u64,
    /// Whether a delivery samples `MeshDaemon::load()` (for `LeastLoad`).
    pub(crate) samples_load: bool,
}
pub(crate) use replica::{PublicIdentity, Replica};
pub(crate) use stats::Circuit;

/// An event delivered to a replica.
///
/// ```
/// use replica_router::Event;
/// let event = Event::new("hello");
/// assert_eq!(&event.payload()[..], b"hello");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    payload: Bytes,
}

impl Event {
    /// An event carrying `payload` (cheaply cloned: `Bytes` is reference-counted).
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Event {
            payload: payload.into(),
        }
    }

    /// The event's payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

/// A daemon: one replica's event processor. A runtime factory creates one per
/// replica; a replica processes one event at a time.
///
/// ```
/// use bytes::Bytes;
/// use replica_router::{DaemonError, Event, MeshDaemon};
///
/// struct Echo;
/// impl MeshDaemon for Echo {
///     fn name(&self) -> &str { "echo" }
///     fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
///         Ok(vec![event.payload().clone()])
///     }
/// }
/// ```
pub trait MeshDaemon: Send + 'static {
    /// A human-readable name, for logs.
    fn name(&self) -> &str;

    /// Processes one event, returning its outputs.
    /// Return [`DaemonError::ProcessFailed`] when the event fails; five
    /// consecutive failures open the replica's circuit.
    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError>;

    /// The tags a node must carry to host this daemon.
    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter::default()
    }

    /// The daemon's own load estimate (any non-negative scale), sampled after
    /// each event and used by `Strategy::LeastLoad`. Negative values count
    /// as 0 and finite values saturate at 2^40; `+inf`, `NaN` and a `load()`
    /// that panics count as more loaded than any finite value.
    fn load(&self) -> f64 {
        0.0
    }
}

/// How each replica of a group treats failures and weighs latency. Build it
/// with `..DaemonHostConfig::default()` for the settings you keep.
///
/// ```
/// use std::time::Duration;
/// use replica_router::DaemonHostConfig;
/// let config = DaemonHostConfig {
///     circuit_failure_threshold: 3,
///     ..DaemonHostConfig::default()
/// };
/// assert_eq!(config.latency_decay, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonHostConfig {
    /// Consecutive `process` errors that open a replica's circuit (default 5).
    pub circuit_failure_threshold: u32,
    /// How long an open circuit keeps traffic away before one probe is
    /// admitted, and how long an unfinished probe holds the circuit (default 30 s).
    pub circuit_recovery: Duration,
    /// The time constant of the exponential decay of a replica's latency
    /// estimate (default 10 s): a sample's weight falls to 1/e after this
    /// long, so a replica that was slow once is tried again and regains its
    /// share once fast. Used by `LeastLatency` and `Adaptive`.
    pub latency_decay: Duration,
}

impl Default for DaemonHostConfig {
    fn default() -> Self {
        DaemonHostConfig {
            circuit_failure_threshold: 5,
            circuit_recovery: Duration::from_secs(30),
            latency_decay: Duration::from_secs(10),
        }
    }
}
