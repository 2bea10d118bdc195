//! Daemons, the events they process, and the host that runs one replica.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{panic_message, DaemonError, DeliverError};
use crate::node::CapabilityFilter;
use crate::stats::{Admission, ReplicaStats};
use crate::sync::{Arc, Mutex};

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
    /// each event and used by `Strategy::LeastLoad`.
    fn load(&self) -> f64 {
        0.0
    }
}

/// How the host of each replica treats failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonHostConfig {
    /// Consecutive `process` errors that open a replica's circuit (default 5).
    pub circuit_failure_threshold: u32,
    /// How long an open circuit keeps traffic away before one probe is
    /// admitted, and how long an unfinished probe holds the circuit (default 30 s).
    pub circuit_recovery: Duration,
}

impl Default for DaemonHostConfig {
    fn default() -> Self {
        DaemonHostConfig {
            circuit_failure_threshold: 5,
            circuit_recovery: Duration::from_secs(30),
        }
    }
}

/// Runs one replica: its daemon, its live statistics and where it lives.
///
/// In a cluster, a replica placed on another node's process has a host here
/// without a daemon: it carries the replica's stats for routing, and a
/// delivery to it says which node hosts it.
pub(crate) struct DaemonHost {
    origin_hash: u64,
    node_id: u64,
    daemon: Option<Mutex<Box<dyn MeshDaemon>>>,
    stats: Arc<ReplicaStats>,
    config: DaemonHostConfig,
}

impl fmt::Debug for DaemonHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonHost")
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("node_id", &self.node_id)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DaemonHost {
    pub(crate) fn new(
        origin_hash: u64,
        node_id: u64,
        daemon: Option<Box<dyn MeshDaemon>>,
        config: DaemonHostConfig,
    ) -> Self {
        DaemonHost {
            origin_hash,
            node_id,
            daemon: daemon.map(Mutex::new),
            stats: Arc::new(ReplicaStats::default()),
            config,
        }
    }

    pub(crate) fn stats(&self) -> &Arc<ReplicaStats> {
        &self.stats
    }

    /// Processes one event: admits it through the circuit, counts it in flight
    /// for exactly as long as it runs (a panic included), and records latency,
    /// outcome and load.
    pub(crate) fn process(&self, event: &Event) -> Result<Vec<Bytes>, DeliverError> {
        let Some(daemon) = &self.daemon else {
            return Err(DeliverError::HostedElsewhere {
                origin_hash: self.origin_hash,
                node_id: self.node_id,
            });
        };
        let window = self.config.circuit_recovery;
        let admission = self.stats.admit(window);
        if admission == Admission::Rejected {
            return Err(DeliverError::CircuitOpen(self.origin_hash));
        }
        let _in_flight = self.stats.begin();
        let mut daemon = daemon.lock();
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| daemon.process(event)));
        let elapsed = started.elapsed();
        let load = catch_unwind(AssertUnwindSafe(|| daemon.load()))
            .ok()
            .filter(|l| l.is_finite())
            .unwrap_or(0.0);
        let ok = matches!(result, Ok(Ok(_)));
        let threshold = self.config.circuit_failure_threshold;
        self.stats
            .record(admission, elapsed, ok, load, threshold, window);
        match result {
            Ok(Ok(outputs)) => Ok(outputs),
            Ok(Err(error)) => Err(DeliverError::Daemon {
                origin_hash: self.origin_hash,
                error,
            }),
            Err(payload) => Err(DeliverError::Panicked {
                origin_hash: self.origin_hash,
                message: panic_message(payload.as_ref()),
            }),
        }
    }
}
