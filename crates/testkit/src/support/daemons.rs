//! Small daemons, and the latch and panic silencer that go with them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use replica_router::{CapabilityFilter, DaemonError, DaemonRuntime, Event, MeshDaemon};

/// The payload of every deliberate panic: a [`Flaky`] daemon asked to panic,
/// the interpreter's broken factory. [`quiet_deliberate_panics`] keeps them
/// out of the output.
pub const DELIBERATE_PANIC: &str = "replica-router-testkit: panicked on purpose";

/// Installs (once per process) a panic hook that keeps deliberate panics
/// ([`DELIBERATE_PANIC`], which the runtime catches) quiet, and hands every
/// other panic to the hook installed before, such as a fuzzer's, which
/// aborts on it.
pub fn quiet_deliberate_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&DELIBERATE_PANIC) {
                previous(info);
            }
        }));
    });
}

/// Returns the payload it was given.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl MeshDaemon for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
}

/// Echoes, and counts the events it processed in a shared counter.
#[derive(Debug)]
pub struct Counting(pub Arc<AtomicUsize>);

impl MeshDaemon for Counting {
    fn name(&self) -> &str {
        "counting"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(vec![event.payload().clone()])
    }
}

/// Echoes, and counts its own drops in a shared counter (daemons dropped =
/// replicas torn down).
#[derive(Debug)]
pub struct DropCounter(pub Arc<AtomicUsize>);

impl MeshDaemon for DropCounter {
    fn name(&self) -> &str {
        "drop-counter"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        Ok(vec![event.payload().clone()])
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Does what its payload says: `fail` returns `ProcessFailed("asked to
/// fail")`, `panic` panics with [`DELIBERATE_PANIC`], `slow` takes
/// [`Flaky::SLOW`], `hold` waits inside `process` while its [`Latch`] is
/// closed; anything else is echoed after the daemon's delay (none by
/// default). `load()` reports the load it was given (0.0 by default).
#[derive(Debug, Default, Clone)]
pub struct Flaky {
    latch: Option<Arc<Latch>>,
    delay: Duration,
    load: f64,
}

impl Flaky {
    /// How long a `slow` event takes.
    pub const SLOW: Duration = Duration::from_millis(300);

    /// `hold` events wait on `latch`.
    pub fn with_latch(self, latch: Arc<Latch>) -> Self {
        Flaky {
            latch: Some(latch),
            ..self
        }
    }

    /// Every echoed event takes `delay`.
    pub fn with_delay(self, delay: Duration) -> Self {
        Flaky { delay, ..self }
    }

    /// `load()` reports `load`.
    pub fn with_load(self, load: f64) -> Self {
        Flaky { load, ..self }
    }
}

impl MeshDaemon for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        match &event.payload()[..] {
            b"fail" => return Err(DaemonError::ProcessFailed("asked to fail".into())),
            b"panic" => std::panic::panic_any(DELIBERATE_PANIC),
            b"slow" => std::thread::sleep(Self::SLOW),
            b"hold" => {
                if let Some(latch) = &self.latch {
                    latch.wait();
                }
            }
            _ if !self.delay.is_zero() => std::thread::sleep(self.delay),
            _ => {}
        }
        Ok(vec![event.payload().clone()])
    }

    fn load(&self) -> f64 {
        self.load
    }
}

/// A daemon (an [`Echo`] unless given another) that may only live on nodes
/// carrying `tag`.
#[derive(Debug)]
pub struct NeedsTag<D = Echo> {
    tag: &'static str,
    daemon: D,
}

impl NeedsTag {
    /// An echo that needs nodes tagged `tag`.
    pub fn new(tag: &'static str) -> Self {
        NeedsTag { tag, daemon: Echo }
    }
}

impl<D: MeshDaemon> NeedsTag<D> {
    /// `daemon`, needing nodes tagged `tag`.
    pub fn with_daemon(tag: &'static str, daemon: D) -> Self {
        NeedsTag { tag, daemon }
    }
}

impl<D: MeshDaemon> MeshDaemon for NeedsTag<D> {
    fn name(&self) -> &str {
        self.daemon.name()
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.daemon.process(event)
    }

    fn requirements(&self) -> CapabilityFilter {
        CapabilityFilter::new().require_tag(self.tag)
    }

    fn load(&self) -> f64 {
        self.daemon.load()
    }
}

/// A replica of measured behaviour, for the latency-aware strategies: each
/// event takes `latency` (busy-waited, so the time is what the clock sees),
/// and every `fail_every`-th event fails at once. Its latency can be changed
/// while it runs (shared with the test through [`Pace`]).
#[derive(Debug, Clone)]
pub struct Paced {
    pace: Arc<Pace>,
    events: u64,
}

/// The behaviour of a [`Paced`] daemon, shared with the test.
#[derive(Debug, Default)]
pub struct Pace {
    latency_ns: AtomicU64,
    fail_every: AtomicU64,
}

impl Pace {
    /// Events take `latency`, and none fails.
    pub fn new(latency: Duration) -> Arc<Pace> {
        let pace = Pace::default();
        pace.set_latency(latency);
        Arc::new(pace)
    }

    /// Every `n`-th event fails at once (0: none).
    pub fn failing_every(self: Arc<Self>, n: u64) -> Arc<Pace> {
        self.fail_every.store(n, Ordering::SeqCst);
        self
    }

    /// From now on, events take `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ns
            .store(latency.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Paced {
    /// A daemon behaving as `pace` says.
    pub fn new(pace: &Arc<Pace>) -> Self {
        Paced {
            pace: Arc::clone(pace),
            events: 0,
        }
    }

    /// A factory whose `i`-th daemon (replica `i`, when a group is spawned
    /// with no failure) behaves as `paces[i]`, the last one repeating.
    pub fn factory(paces: Vec<Arc<Pace>>) -> impl Fn() -> Box<dyn MeshDaemon> + Send + Sync {
        let made = AtomicUsize::new(0);
        move || {
            let i = made.fetch_add(1, Ordering::SeqCst).min(paces.len() - 1);
            Box::new(Paced::new(&paces[i]))
        }
    }
}

impl MeshDaemon for Paced {
    fn name(&self) -> &str {
        "paced"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.events += 1;
        let every = self.pace.fail_every.load(Ordering::SeqCst);
        if every > 0 && self.events % every == 0 {
            return Err(DaemonError::ProcessFailed("paced failure".into()));
        }
        let latency = Duration::from_nanos(self.pace.latency_ns.load(Ordering::SeqCst));
        let started = std::time::Instant::now();
        while started.elapsed() < latency {
            std::hint::spin_loop();
        }
        Ok(vec![event.payload().clone()])
    }
}

/// Where a [`Volatile`] daemon panics, besides what [`Flaky`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicsIn {
    /// `requirements()`: it cannot be placed, and its spawn fails.
    Requirements,
    /// `load()` and `Drop`: it works, but every teardown and every load
    /// sample panics.
    LoadAndDrop,
}

/// A [`Flaky`] whose other methods panic, with [`DELIBERATE_PANIC`]: the
/// user code the runtime must contain wherever it calls it.
#[derive(Debug)]
pub struct Volatile {
    daemon: Flaky,
    panics_in: PanicsIn,
}

impl Volatile {
    /// A daemon panicking in `panics_in`.
    pub fn new(panics_in: PanicsIn) -> Self {
        Volatile {
            daemon: Flaky::default(),
            panics_in,
        }
    }
}

impl MeshDaemon for Volatile {
    fn name(&self) -> &str {
        "volatile"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        self.daemon.process(event)
    }

    fn requirements(&self) -> CapabilityFilter {
        if self.panics_in == PanicsIn::Requirements {
            std::panic::panic_any(DELIBERATE_PANIC);
        }
        CapabilityFilter::new()
    }

    fn load(&self) -> f64 {
        std::panic::panic_any(DELIBERATE_PANIC)
    }
}

impl Drop for Volatile {
    fn drop(&mut self) {
        if self.panics_in == PanicsIn::LoadAndDrop && !std::thread::panicking() {
            std::panic::panic_any(DELIBERATE_PANIC);
        }
    }
}

/// A latch that [`Flaky`]'s `hold` events wait on while it is closed: the
/// way to keep deliveries in flight for as long as a test needs.
#[derive(Debug, Default)]
pub struct Latch {
    closed: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Latch {
    /// Closes the latch: `hold` events wait from now on.
    pub fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }

    /// Opens the latch: every waiting `hold` event returns.
    pub fn open(&self) {
        *self.closed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    /// Waits while the latch is closed.
    pub fn wait(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
        drop(closed);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Events waiting right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Closes the latch and starts `n` deliveries of `hold` to `origin`
    /// (a [`Flaky`] replica holding this latch); returns once one waits
    /// inside the daemon. The others queue behind it on the replica, in
    /// flight too (given 100 ms to get there). In flight until
    /// [`Held::release`] or the drop of the [`Held`].
    pub fn hold(self: &Arc<Self>, rt: &DaemonRuntime, origin: u64, n: usize) -> Held {
        self.close();
        let before = self.waiting();
        let deliveries = (0..n)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    rt.deliver(origin, &Event::new("hold")).unwrap();
                })
            })
            .collect();
        while self.waiting() == before {
            std::thread::sleep(Duration::from_millis(1));
        }
        if n > 1 {
            std::thread::sleep(Duration::from_millis(100));
        }
        Held {
            latch: Arc::clone(self),
            deliveries,
        }
    }
}

/// Deliveries kept in flight by [`Latch::hold`].
#[derive(Debug)]
pub struct Held {
    latch: Arc<Latch>,
    deliveries: Vec<JoinHandle<()>>,
}

impl Held {
    /// Opens the latch and waits until every held delivery has returned
    /// (a failed one fails the caller).
    pub fn release(mut self) {
        self.latch.open();
        for delivery in self.deliveries.drain(..) {
            delivery.join().expect("a held delivery failed");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.latch.open();
        for delivery in self.deliveries.drain(..) {
            let _ = delivery.join();
        }
    }
}
