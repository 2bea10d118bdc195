//! One replica at run time: its identity, the node it sits on, its daemon
//! and its live statistics. The writer creates it; the registry and every
//! roster that lists it share it.

use std::cell::Cell;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;

use super::contained::{contain, Daemon};
use super::stats::{Admission, Circuit, CircuitChange, ReplicaStats};
use super::{Event, HostSettings};
use crate::error::DeliverError;
use crate::identity::ReplicaIdentity;
use crate::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::sync::{coarse_now, thread_local, tick_coarse, Arc, Mutex};

thread_local! {
    /// This thread's tag, drawn on first use (0 until then).
    static THREAD_TAG: Cell<u32> = const { Cell::new(0) };
}

/// A value no other thread of the process has, cheaper to get than
/// `thread::current().id()`. Drawn from a std counter even under loom: only
/// its uniqueness matters, so it orders nothing and is no scheduling point.
fn thread_tag() -> u32 {
    static TAGS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    THREAD_TAG.with(|tag| {
        if tag.get() == 0 {
            tag.set(TAGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        }
        tag.get()
    })
}

/// A replica: what routes read first (its origin hash and statistics, so a
/// route touches the start of the allocation only), then what delivery
/// needs.
///
/// In a cluster, a replica placed on another node's process exists here
/// without a daemon: it carries the statistics routing reads, and a delivery
/// to it says which node hosts it.
pub(crate) struct Replica {
    origin_hash: u64,
    stats: ReplicaStats,
    node_id: u64,
    settings: Arc<HostSettings>,
    /// `None` once the replica is retired and its daemon taken, and always
    /// when another node's process hosts it (see `hosted_here`).
    daemon: Mutex<Option<Daemon>>,
    /// Set by the writer when the replica leaves the registry and the
    /// rosters; its daemon is taken then, or by the delivery holding it.
    retired: AtomicBool,
    /// Whether this process runs the daemon (in a cluster, only the replicas
    /// placed on its own node).
    hosted_here: bool,
    index: u8,
    /// When it last became healthy (placed, or its node recovered), on the
    /// coarse clock: the start of its slow-start ramp.
    healthy_since_ms: AtomicU32,
    entity_id: [u8; 32],
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("index", &self.index)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("node_id", &self.node_id)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Counts a delivery in its group's total while it lasts (bounded-load
/// consistent hashing only).
struct GroupInFlight<'a>(&'a AtomicU32);

impl<'a> GroupInFlight<'a> {
    fn begin(settings: &'a HostSettings) -> Self {
        settings.total().fetch_add(1, Ordering::Relaxed);
        GroupInFlight(settings.total())
    }
}

impl Drop for GroupInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The public part of a replica's identity: what the runtime keeps of it
/// (the signing key is derived when needed, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublicIdentity {
    pub(crate) index: u8,
    pub(crate) origin_hash: u64,
    pub(crate) entity_id: [u8; 32],
}

impl From<&ReplicaIdentity> for PublicIdentity {
    fn from(identity: &ReplicaIdentity) -> Self {
        PublicIdentity {
            index: identity.index(),
            origin_hash: identity.origin_hash(),
            entity_id: identity.entity_id(),
        }
    }
}

impl Replica {
    /// Replica `identity` on `node_id`, running `daemon` when this process
    /// hosts it, with fresh statistics.
    pub(crate) fn new(
        identity: PublicIdentity,
        node_id: u64,
        daemon: Option<Daemon>,
        settings: Arc<HostSettings>,
    ) -> Self {
        Replica {
            stats: ReplicaStats::default(),
            origin_hash: identity.origin_hash,
            node_id,
            index: identity.index,
            entity_id: identity.entity_id,
            hosted_here: daemon.is_some(),
            daemon: Mutex::new(daemon),
            retired: AtomicBool::new(false),
            healthy_since_ms: AtomicU32::new(coarse_now()),
            settings,
        }
    }

    /// Its identity.
    pub(crate) fn identity(&self) -> PublicIdentity {
        PublicIdentity {
            index: self.index,
            origin_hash: self.origin_hash,
            entity_id: self.entity_id,
        }
    }

    /// When it last became healthy, on the coarse clock.
    #[inline]
    pub(crate) fn healthy_since_ms(&self) -> u32 {
        self.healthy_since_ms.load(Ordering::Relaxed)
    }

    /// Restarts its slow-start ramp: it became healthy again.
    pub(crate) fn healthy_again(&self) {
        self.healthy_since_ms.store(coarse_now(), Ordering::Relaxed);
    }

    /// The settings its group shares.
    #[inline]
    pub(crate) fn settings(&self) -> &HostSettings {
        &self.settings
    }

    #[inline]
    pub(crate) fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    #[inline]
    pub(crate) fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    pub(crate) fn node_id(&self) -> u64 {
        self.node_id
    }

    pub(crate) fn index(&self) -> u8 {
        self.index
    }

    pub(crate) fn entity_id(&self) -> [u8; 32] {
        self.entity_id
    }

    /// Marks the replica gone and takes its daemon, for the writer to drop;
    /// when a delivery holds the daemon right now, that delivery drops it as
    /// it ends. Deliveries that find the daemon gone are `UnknownOrigin`
    /// (the replica left the registry and the rosters before this).
    pub(crate) fn retire(&self) -> Option<Daemon> {
        self.retired.store(true, Ordering::SeqCst);
        if self.stats.circuit() != Circuit::Closed {
            self.settings.circuit_closed();
        }
        self.daemon.try_lock()?.take()
    }

    /// Processes one event: admits it through the circuit, counts it in flight
    /// for exactly as long as it runs (a panic included), and records latency,
    /// outcome and load.
    pub(crate) fn process(&self, event: &Event) -> Result<Vec<Bytes>, DeliverError> {
        if !self.hosted_here {
            return Err(DeliverError::HostedElsewhere {
                origin_hash: self.origin_hash,
                node_id: self.node_id,
            });
        }
        let tag = thread_tag();
        if self.stats.holder() == tag {
            return Err(DeliverError::Reentrant(self.origin_hash));
        }
        let settings = &*self.settings;
        let window = settings.config.circuit_recovery;
        let admission = self.stats.admit(window);
        if admission == Admission::Rejected {
            return Err(DeliverError::CircuitOpen(self.origin_hash));
        }
        let _counted = settings
            .tracks_total()
            .then(|| GroupInFlight::begin(settings));
        // The common case takes the free daemon at once; only a delivery
        // that must wait counts itself waiting (a read-modify-write).
        let mut slot = match self.daemon.try_lock() {
            Some(slot) => slot,
            None => {
                let _waiting = self.stats.wait();
                self.daemon.lock()
            }
        };
        let Some(daemon) = slot.as_mut() else {
            // Retired while this delivery waited for the lock.
            return Err(DeliverError::UnknownOrigin(self.origin_hash));
        };
        self.stats.hold(tag);
        let timed = self.stats.processed() & (settings.latency_every - 1) == 0;
        let started = timed.then(Instant::now);
        let result = contain(|| daemon.get().process(event));
        let timing = started.map(|started| {
            let ended = Instant::now();
            (ended - started, tick_coarse(ended))
        });
        let load = settings
            .samples_load
            .then(|| contain(|| daemon.get().load()).unwrap_or(f64::NAN));
        self.stats.hold(0);
        // Recorded under the daemon's lock: the outcome counters have one
        // writer at a time.
        let ok = matches!(result, Ok(Ok(_)));
        match self.stats.record(admission, timing, ok, load, settings) {
            Some(CircuitChange::Opened) => settings.circuit_opened(self.origin_hash),
            Some(CircuitChange::Closed) => settings.circuit_closed(),
            None => {}
        }
        drop(slot);
        if self.retired.load(Ordering::SeqCst) {
            // The writer retired the replica while this delivery held the
            // daemon, so it could not take it: whoever holds it last drops
            // it (contained, see `Daemon`).
            let daemon = self.daemon.try_lock().and_then(|mut slot| slot.take());
            drop(daemon);
        }
        match result {
            Ok(Ok(outputs)) => Ok(outputs),
            Ok(Err(error)) => Err(DeliverError::Daemon {
                origin_hash: self.origin_hash,
                error,
            }),
            Err(message) => Err(DeliverError::Panicked {
                origin_hash: self.origin_hash,
                message,
            }),
        }
    }

    /// The in-flight count, for the loom models.
    #[cfg(replica_router_loom)]
    pub(crate) fn in_flight(&self) -> u32 {
        self.stats.in_flight()
    }
}
