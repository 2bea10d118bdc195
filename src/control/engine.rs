//! The engine every handle shares: the lifecycle phase, the writer thread and
//! its command channel, the registry and the daemon factories. The writer
//! thread stops at `shutdown`, or when the last handle drops the engine.

use bytes::Bytes;

use super::command::{Command, Reply};
use super::factories::{Factories, Factory};
use super::registry::Registry;
use super::writer::Writer;
use super::{Hosting, NodeTable};
use crate::daemon::{contain, Event};
use crate::error::{DeliverError, GroupError, RuntimeError};
use crate::node::NodeInfo;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::channel::{self, Sender};
use crate::sync::thread::{self, JoinHandle, ThreadId};
use crate::sync::{recv_soon, Arc, Mutex};

const REGISTERING: u8 = 0;
const READY: u8 = 1;
const SHUTTING_DOWN: u8 = 2;
const STOPPED: u8 = 3;

/// The lifecycle phase of a runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Registering,
    Ready,
    ShuttingDown,
    /// The writer thread stopped for a reason other than shutdown.
    Stopped,
}

/// Why a command got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// Called on the writer thread itself (from user code the writer runs,
    /// such as a daemon factory), where waiting for the answer would deadlock.
    OnWriter,
    /// The writer is gone: the runtime shut down.
    ShutDown,
    /// The writer thread stopped for this reason, not a shutdown.
    Stopped(String),
}

impl From<CallError> for GroupError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::OnWriter => GroupError::CalledFromWriter,
            CallError::ShutDown => GroupError::ShuttingDown,
            CallError::Stopped(why) => GroupError::WriterStopped(why),
        }
    }
}

impl From<CallError> for RuntimeError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::OnWriter => RuntimeError::CalledFromWriter,
            CallError::ShutDown => RuntimeError::ShuttingDown,
            CallError::Stopped(why) => RuntimeError::WriterStopped(why),
        }
    }
}

/// The phase, shared with the writer thread, which marks it `Stopped` (with
/// the reason) if it ever ends other than by shutdown.
#[derive(Debug)]
struct Lifecycle {
    phase: AtomicU8,
    stopped: Mutex<Option<String>>,
}

impl Lifecycle {
    fn writer_stopped(&self, why: String) {
        tracing::error!(%why, "the replica-router writer thread stopped; no change can be made any more");
        *self.stopped.lock() = Some(why);
        let _ = self
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p != SHUTTING_DOWN).then_some(STOPPED)
            });
    }
}

/// See the module docs.
pub(crate) struct Engine {
    lifecycle: Arc<Lifecycle>,
    commands: Sender<Command>,
    registry: Arc<Registry>,
    factories: Arc<Factories>,
    writer: Mutex<Option<JoinHandle<()>>>,
    writer_thread: ThreadId,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("phase", &self.phase())
            .field("replicas", &self.registry.len())
            .field("kinds", &self.factories.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `nodes` whose writer thread is running, hosting the
    /// replicas `hosting` says.
    pub(crate) fn start(nodes: impl IntoIterator<Item = NodeInfo>, hosting: Hosting) -> Engine {
        let registry = Arc::new(Registry::default());
        let factories = Arc::new(Factories::new());
        let writer = Writer::new(
            NodeTable::new(nodes, hosting),
            Arc::clone(&registry),
            Arc::clone(&factories),
        );
        let (commands, receiver) = channel::unbounded();
        let lifecycle = Arc::new(Lifecycle {
            phase: AtomicU8::new(REGISTERING),
            stopped: Mutex::new(None),
        });
        let watched = Arc::clone(&lifecycle);
        let handle = thread::Builder::new()
            .name("replica-router-writer".into())
            .spawn(move || {
                // Every call into user code is contained where it is made;
                // this catches a bug of the writer's own, so that the
                // runtime says it stopped instead of going silent.
                if let Err(panic) = contain(move || writer.run(receiver)) {
                    watched.writer_stopped(format!("it panicked: {panic}"));
                }
            })
            .expect("spawn the replica-router writer thread");
        Engine {
            writer_thread: handle.thread().id(),
            lifecycle,
            commands,
            registry,
            factories,
            writer: Mutex::new(Some(handle)),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.lifecycle.phase.load(Ordering::Acquire) {
            REGISTERING => Phase::Registering,
            READY => Phase::Ready,
            STOPPED => Phase::Stopped,
            _ => Phase::ShuttingDown,
        }
    }

    /// Registering → Ready; a ready engine stays ready.
    pub(crate) fn make_ready(&self) -> Result<(), RuntimeError> {
        match self.lifecycle.phase.compare_exchange(
            REGISTERING,
            READY,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) | Err(READY) => Ok(()),
            Err(STOPPED) => Err(RuntimeError::from(self.gone())),
            Err(_) => Err(RuntimeError::ShuttingDown),
        }
    }

    pub(crate) fn register_factory(&self, kind: &str, f: Arc<Factory>) -> Result<(), RuntimeError> {
        if self.phase() == Phase::ShuttingDown {
            return Err(RuntimeError::ShuttingDown);
        }
        if kind.is_empty() {
            return Err(RuntimeError::InvalidKind(kind.to_owned()));
        }
        match self.factories.entry(kind.to_owned()) {
            crate::sync::Entry::Occupied(_) => Err(RuntimeError::DuplicateKind(kind.to_owned())),
            crate::sync::Entry::Vacant(slot) => {
                slot.insert(f);
                Ok(())
            }
        }
    }

    pub(crate) fn registered(&self) -> (usize, usize) {
        (self.registry.len(), self.factories.len())
    }

    /// Sends a command and waits for its answer.
    pub(crate) fn call<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, CallError> {
        if thread::current().id() == self.writer_thread {
            return Err(CallError::OnWriter);
        }
        let (reply, answer) = channel::bounded(1);
        self.commands
            .send(command(reply))
            .map_err(|_| self.gone())?;
        recv_soon(&answer).map_err(|_| self.gone())
    }

    /// Why a command got no answer from a writer that is gone. Unless the
    /// runtime shut down, the writer thread stopped: the answer waits for
    /// the thread to end, which records why.
    fn gone(&self) -> CallError {
        if self.phase() != Phase::ShuttingDown {
            let mut writer = self.writer.lock();
            if let Some(handle) = writer.take() {
                let _ = handle.join();
            }
        }
        match &*self.lifecycle.stopped.lock() {
            Some(why) => CallError::Stopped(why.clone()),
            None => CallError::ShutDown,
        }
    }

    /// Delivers `event` to the registered replica with `origin_hash`.
    ///
    /// A failover swaps the registry entry to the moved replica and then
    /// retires the old one, so a delivery that found the old one just before
    /// the swap looks again and follows it: a moving replica is never missed.
    pub(crate) fn deliver(
        &self,
        origin_hash: u64,
        event: &Event,
    ) -> Result<Vec<Bytes>, DeliverError> {
        if self.phase() == Phase::ShuttingDown {
            return Err(DeliverError::ShuttingDown);
        }
        let mut replica = self
            .registry
            .get(origin_hash)
            .ok_or(DeliverError::UnknownOrigin(origin_hash))?;
        loop {
            match replica.process(event) {
                Err(DeliverError::UnknownOrigin(_)) => match self.registry.get(origin_hash) {
                    Some(moved) if !Arc::ptr_eq(&moved, &replica) => replica = moved,
                    _ => return Err(DeliverError::UnknownOrigin(origin_hash)),
                },
                delivered => return delivered,
            }
        }
    }

    /// The in-flight count of a registered replica, for the loom models.
    #[cfg(replica_router_loom)]
    pub(crate) fn in_flight_of(&self, origin_hash: u64) -> Option<u32> {
        Some(self.registry.get(origin_hash)?.in_flight())
    }

    /// Moves to ShuttingDown, closes every group and joins the writer.
    /// Idempotent.
    pub(crate) fn shutdown(&self) {
        let first = self.lifecycle.phase.swap(SHUTTING_DOWN, Ordering::AcqRel) != SHUTTING_DOWN;
        let (reply, answer) = channel::bounded(1);
        let sent = first && self.commands.send(Command::Shutdown(reply)).is_ok();
        // User code the writer runs (a factory) may shut the runtime down: the
        // writer can neither wait for nor join itself, and applies the
        // shutdown right after the current command.
        if thread::current().id() == self.writer_thread {
            return;
        }
        if sent {
            let _ = answer.recv();
        }
        let handle = self.writer.lock().take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(all(test, not(replica_router_loom)))]
mod tests {
    use super::*;

    /// A writer that stops other than by shutdown (a bug of its own: user
    /// code is contained where it is called) leaves a runtime that says so.
    #[test]
    fn a_writer_that_stops_is_reported_by_every_call_and_the_phase() {
        let engine = Engine::start([NodeInfo::new(1)], Hosting::Every);
        engine.make_ready().unwrap();
        let first = engine.call(|_reply: Reply<()>| Command::Crash);
        let Err(CallError::Stopped(why)) = first else {
            panic!("{first:?}");
        };
        assert!(why.contains("writer crash for a test"), "{why}");
        assert_eq!(engine.phase(), Phase::Stopped);
        assert_eq!(
            engine.call(Command::Digest).map_err(RuntimeError::from),
            Err(RuntimeError::WriterStopped(why.clone()))
        );
        assert_eq!(engine.make_ready(), Err(RuntimeError::WriterStopped(why)));
        engine.shutdown();
        assert_eq!(engine.phase(), Phase::ShuttingDown);
    }
}
