//! Daemons, the events they process, and the replica that runs one daemon.

mod contained;
mod replica;
mod settings;
mod stats;

use std::time::Duration;

use bytes::Bytes;

use crate::error::DaemonError;
use crate::node::CapabilityFilter;

pub(crate) use contained::{contain, Daemon};

pub(crate) use replica::{PublicIdentity, Replica};
pub(crate) use settings::{Decay, HostSettings};
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

/// How each replica of a group treats failures, weighs latency and takes
/// load. Build it with `..DaemonHostConfig::default()` for the settings you
/// keep.
///
/// ```
/// use std::time::Duration;
/// use replica_router::DaemonHostConfig;
/// let config = DaemonHostConfig {
///     circuit_failure_threshold: 3,
///     slow_start: Duration::from_secs(30),
///     hash_balance_factor: Some(1.25),
///     ..DaemonHostConfig::default()
/// };
/// assert_eq!(config.latency_decay, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq)]
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
    /// How long a new or recovered replica takes to ramp from 10% to its full
    /// share of traffic under `RoundRobin`, `WeightedRoundRobin`,
    /// `LeastConnections` and `PowerOfTwo` (default zero: no ramp).
    pub slow_start: Duration,
    /// Bounded-load consistent hashing (`ConsistentHash`, and `Adaptive`'s
    /// keyed routes): a key whose replica has more deliveries in flight than
    /// this factor times the group's mean (rounded up) goes to the next
    /// replica of the key's own probe order, so hot keys spill and cold keys
    /// stay put. `None` (the default) never spills; 1.25 is typical. Must be
    /// at least 1.
    pub hash_balance_factor: Option<f64>,
    /// The largest share of a group's healthy replicas that open circuits
    /// may keep out of routing, in percent (default 100: every open circuit
    /// is honoured, and a group whose circuits are all open routes nowhere).
    /// Past it, routing ignores circuits and uses every healthy replica (a
    /// panic threshold), so ejection never black-holes the group; each time
    /// a group crosses it is counted ([`ReplicaGroup::ejection_panics`]) and
    /// logged. At least one open circuit is always honoured.
    ///
    /// [`ReplicaGroup::ejection_panics`]: crate::ReplicaGroup::ejection_panics
    pub max_ejection_percent: u8,
}

// Kept `Eq` (as before `hash_balance_factor` existed): a NaN factor, the one
// value unequal to itself, is refused by spawn, so configs in use compare
// totally.
impl Eq for DaemonHostConfig {}

impl Default for DaemonHostConfig {
    fn default() -> Self {
        DaemonHostConfig {
            circuit_failure_threshold: 5,
            circuit_recovery: Duration::from_secs(30),
            latency_decay: Duration::from_secs(10),
            slow_start: Duration::ZERO,
            hash_balance_factor: None,
            max_ejection_percent: 100,
        }
    }
}

/// A daemon that returns each event's payload: the cluster unit tests'
/// daemon.
#[cfg(all(test, feature = "etcd"))]
pub(crate) struct Echo;

#[cfg(all(test, feature = "etcd"))]
impl MeshDaemon for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn process(&mut self, e: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> {
        Ok(vec![e.payload().clone()])
    }
}
