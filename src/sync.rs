//! The one switch between the primitives the crate ships on and the loom
//! stand-ins it is model-checked with.
//!
//! Every `Arc`, atomic, lock, thread, channel, thread-local, published roster,
//! concurrent map, process-wide counter and the circuit clock used in `src/`
//! comes from here. Built normally, these are std, `parking_lot`,
//! `crossbeam-channel`, `dashmap` and `arc-swap`, with no wrapper cost (each
//! wrapper is a transparent, inlined newtype). Built with
//! `RUSTFLAGS="--cfg replica_router_loom"`, they are loom's, so the models in
//! `loom-tests/` explore every interleaving of the same writer, publisher,
//! router, registry and circuit code that ships. The cfg has a crate-specific
//! name so that dependencies with their own `cfg(loom)` paths are not flipped.
//!
//! Under loom:
//! - [`Publisher`] keeps the roster behind a loom `Mutex` with a version
//!   number in a loom atomic: publish swaps the value and bumps the version;
//!   a [`CachedReader`] compares its version with one relaxed load and takes
//!   the lock only when it changed. That is `arc_swap::Cache`'s protocol
//!   (compare the pointer with one relaxed load, `load_full` on change), made
//!   visible to loom.
//! - The writer's channel is `loom::sync::mpsc`, its thread `loom::thread`,
//!   and a [`Map`] is a loom `Mutex<HashMap>`.
//! - The circuit's clock is a mock the model advances (`hooks::advance_clock`).
//! - `Arc` stays std's: reference counting is std's correctness, not ours,
//!   loom's `Arc` cannot hold unsized values (`Arc<dyn Fn>`, `Arc<str>`), and
//!   it would make every clone of a member's stats while a roster is built a
//!   scheduling point. Every object whose ordering matters (atomics, locks,
//!   channels) is loom's.

#[cfg(not(replica_router_loom))]
pub(crate) use std_impl::*;

#[cfg(replica_router_loom)]
pub(crate) use loom_impl::*;

pub(crate) use std::sync::Arc;

/// Declares a process-wide `u64` counter (group uids, router seeds): it hands
/// out distinct values and carries no synchronization. Under loom it starts
/// over in every execution, so executions replay identically.
macro_rules! process_counter {
    ($name:ident = $first:expr) => {
        #[cfg(not(replica_router_loom))]
        static $name: $crate::sync::ProcessCounter = $crate::sync::ProcessCounter::new($first);
        #[cfg(replica_router_loom)]
        ::loom::lazy_static! {
            static ref $name: $crate::sync::ProcessCounter = $crate::sync::ProcessCounter::new($first);
        }
    };
}
pub(crate) use process_counter;

#[cfg(not(replica_router_loom))]
mod std_impl {
    use std::fmt;
    use std::hash::Hash;
    use std::ops::Deref;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    use arc_swap::{ArcSwap, Cache};
    use dashmap::DashMap;

    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::thread_local;

    /// Atomics.
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
    }

    /// Threads.
    pub(crate) mod thread {
        pub(crate) use std::thread::{current, Builder, JoinHandle, ThreadId};
    }

    /// The writer's command channel and the reply channels.
    pub(crate) mod channel {
        pub(crate) use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
    }

    /// See [`process_counter!`](super::process_counter).
    #[derive(Debug)]
    pub(crate) struct ProcessCounter(AtomicU64);

    impl ProcessCounter {
        pub(crate) const fn new(first: u64) -> Self {
            ProcessCounter(AtomicU64::new(first))
        }

        /// The next value; advances the counter by `step`.
        #[inline]
        pub(crate) fn next(&self, step: u64) -> u64 {
            self.0.fetch_add(step, std::sync::atomic::Ordering::Relaxed)
        }
    }

    /// The clock the circuit breaker reads.
    pub(crate) mod clock {
        use std::sync::OnceLock;
        use std::time::Instant;

        /// Nanoseconds since the first call in this process; never 0.
        pub(crate) fn now_ns() -> u64 {
            static BASE: OnceLock<Instant> = OnceLock::new();
            let base = *BASE.get_or_init(Instant::now);
            (base.elapsed().as_nanos() as u64).max(1)
        }
    }

    /// A value published by one writer and read by many threads without
    /// locks: an `ArcSwap`.
    pub(crate) struct Publisher<T> {
        current: ArcSwap<T>,
    }

    /// A loaded value, kept alive while held.
    pub(crate) type Snapshot<T> = arc_swap::Guard<Arc<T>>;

    impl<T> Publisher<T> {
        pub(crate) fn new(value: T) -> Self {
            Publisher {
                current: ArcSwap::from_pointee(value),
            }
        }

        /// Replaces the value: every load that starts after this returns
        /// sees `value` (or a later one).
        pub(crate) fn store(&self, value: Arc<T>) {
            self.current.store(value);
        }

        /// The current value, without touching its reference count.
        #[inline]
        pub(crate) fn load(&self) -> Snapshot<T> {
            self.current.load()
        }
    }

    impl<T: fmt::Debug> fmt::Debug for Publisher<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_tuple("Publisher").field(&**self.load()).finish()
        }
    }

    /// One thread's cached copy of a [`Publisher`]'s value: `arc_swap::Cache`,
    /// revalidated by one relaxed pointer load; the value is loaded again only
    /// after a store.
    pub(crate) struct CachedReader<T> {
        cache: Cache<Source<T>, Arc<T>>,
    }

    /// What the cache revalidates against.
    struct Source<T>(Arc<Publisher<T>>);

    impl<T> Deref for Source<T> {
        type Target = ArcSwap<T>;

        #[inline(always)]
        fn deref(&self) -> &ArcSwap<T> {
            &self.0.current
        }
    }

    impl<T> CachedReader<T> {
        pub(crate) fn new(publisher: &Arc<Publisher<T>>) -> Self {
            CachedReader {
                cache: Cache::new(Source(Arc::clone(publisher))),
            }
        }

        /// The current value: the cached one unless a store happened since.
        #[inline(always)]
        pub(crate) fn load(&mut self) -> &T {
            self.cache.load()
        }
    }

    /// A concurrent map: a `DashMap`, so operations on different keys do not
    /// contend on one lock.
    #[derive(Debug)]
    pub(crate) struct Map<K: Eq + Hash, V>(DashMap<K, V>);

    impl<K: Eq + Hash, V> Default for Map<K, V> {
        fn default() -> Self {
            Map(DashMap::new())
        }
    }

    impl<K: Eq + Hash, V> Map<K, V> {
        /// A clone of the value under `key`.
        #[inline]
        pub(crate) fn get_cloned<Q>(&self, key: &Q) -> Option<V>
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
            V: Clone,
        {
            self.0.get(key).map(|v| v.clone())
        }

        pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.contains_key(key)
        }

        /// Inserts or replaces in one step: a reader sees the old value or
        /// the new one, never neither.
        pub(crate) fn insert(&self, key: K, value: V) {
            self.0.insert(key, value);
        }

        /// Inserts unless `key` is present; whether it inserted.
        pub(crate) fn insert_new(&self, key: K, value: V) -> bool {
            match self.0.entry(key) {
                dashmap::Entry::Occupied(_) => false,
                dashmap::Entry::Vacant(slot) => {
                    slot.insert(value);
                    true
                }
            }
        }

        pub(crate) fn remove<Q>(&self, key: &Q)
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.remove(key);
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }
}

#[cfg(replica_router_loom)]
mod loom_impl {
    use std::collections::HashMap;
    use std::fmt;
    use std::hash::Hash;
    use std::sync::Arc;

    use loom::sync::atomic::{AtomicU64, Ordering};

    /// `std::thread_local!` over loom's, which (an edition-2018 macro)
    /// does not parse a `const { .. }` initializer: that form is unwrapped.
    macro_rules! loom_thread_local {
        ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr } $(;)?) => {
            ::loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
        };
        ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr $(;)?) => {
            ::loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
        };
    }
    pub(crate) use loom_thread_local as thread_local;

    /// Atomics.
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
    }

    /// Threads.
    pub(crate) mod thread {
        pub(crate) use loom::thread::{current, Builder, JoinHandle, ThreadId};
    }

    /// A lock with `parking_lot`'s signature (no poisoning) over loom's mutex.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// The writer's command channel and the reply channels, over
    /// `loom::sync::mpsc`.
    ///
    /// loom's channel does not model disconnection, which crossbeam's
    /// callers rely on in one place: a shutdown that finds the writer gone
    /// (a second `shutdown`, or the drop after one) must fail to send rather
    /// than leave a message nobody reads. The receiver's liveness is tracked
    /// beside the channel for that. A receive on a channel whose senders are
    /// all gone would be reported by loom as a deadlock; the runtime never
    /// does one (the writer leaves on `Shutdown`, and every reply is sent).
    pub(crate) mod channel {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc::{RecvError, SendError};
        use std::sync::Arc;

        /// The sending half.
        #[derive(Debug)]
        pub(crate) struct Sender<T> {
            inner: loom::sync::mpsc::Sender<T>,
            receiver_alive: Arc<AtomicBool>,
        }

        /// The receiving half.
        #[derive(Debug)]
        pub(crate) struct Receiver<T> {
            inner: loom::sync::mpsc::Receiver<T>,
            alive: Arc<AtomicBool>,
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                Sender {
                    inner: self.inner.clone(),
                    receiver_alive: Arc::clone(&self.receiver_alive),
                }
            }
        }

        /// A channel without a bound.
        pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
            let (inner_tx, inner_rx) = loom::sync::mpsc::channel();
            let alive = Arc::new(AtomicBool::new(true));
            (
                Sender {
                    inner: inner_tx,
                    receiver_alive: Arc::clone(&alive),
                },
                Receiver {
                    inner: inner_rx,
                    alive,
                },
            )
        }

        /// A reply channel: each carries exactly one message, so the bound
        /// never applies.
        pub(crate) fn bounded<T>(_capacity: usize) -> (Sender<T>, Receiver<T>) {
            unbounded()
        }

        impl<T> Sender<T> {
            pub(crate) fn send(&self, message: T) -> Result<(), SendError<T>> {
                // loom runs one model thread at a time on one OS thread, so
                // this flag is exact at the point of the send.
                if !self.receiver_alive.load(Ordering::SeqCst) {
                    return Err(SendError(message));
                }
                self.inner.send(message)
            }
        }

        impl<T> Receiver<T> {
            pub(crate) fn recv(&self) -> Result<T, RecvError> {
                self.inner.recv()
            }
        }

        impl<T> Drop for Receiver<T> {
            fn drop(&mut self) {
                self.alive.store(false, Ordering::SeqCst);
            }
        }
    }

    /// See [`process_counter!`](super::process_counter).
    #[derive(Debug)]
    pub(crate) struct ProcessCounter(AtomicU64);

    impl ProcessCounter {
        pub(crate) fn new(first: u64) -> Self {
            ProcessCounter(AtomicU64::new(first))
        }

        pub(crate) fn next(&self, step: u64) -> u64 {
            self.0.fetch_add(step, Ordering::Relaxed)
        }
    }

    /// The circuit's clock: a mock that stands still until the model
    /// advances it, so a model decides exactly when a window has passed.
    pub(crate) mod clock {
        use loom::sync::atomic::{AtomicU64, Ordering};

        loom::lazy_static! {
            static ref NOW_NS: AtomicU64 = AtomicU64::new(1);
        }

        /// The mock time in nanoseconds; starts at 1 in every execution.
        pub(crate) fn now_ns() -> u64 {
            NOW_NS.load(Ordering::SeqCst)
        }

        pub(crate) fn advance(by: std::time::Duration) {
            let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX >> 2);
            NOW_NS.fetch_add(ns, Ordering::SeqCst);
        }
    }

    /// A published value: behind a loom mutex, with a version number the
    /// readers revalidate against (see the module docs).
    pub(crate) struct Publisher<T> {
        version: AtomicU64,
        current: Mutex<(u64, Arc<T>)>,
    }

    /// A loaded value, kept alive while held.
    pub(crate) type Snapshot<T> = Arc<T>;

    impl<T> Publisher<T> {
        pub(crate) fn new(value: T) -> Self {
            Publisher {
                version: AtomicU64::new(0),
                current: Mutex::new((0, Arc::new(value))),
            }
        }

        /// Replaces the value and bumps the version, both under the lock; the
        /// version is stored with `SeqCst`, as `ArcSwap::store` swaps its pointer.
        pub(crate) fn store(&self, value: Arc<T>) {
            let mut current = self.current.lock();
            let version = current.0 + 1;
            *current = (version, value);
            self.version.store(version, Ordering::SeqCst);
        }

        pub(crate) fn load(&self) -> Snapshot<T> {
            self.load_versioned().1
        }

        fn load_versioned(&self) -> (u64, Arc<T>) {
            let current = self.current.lock();
            (current.0, Arc::clone(&current.1))
        }
    }

    impl<T> fmt::Debug for Publisher<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Publisher").finish_non_exhaustive()
        }
    }

    /// One thread's cached copy of a [`Publisher`]'s value.
    pub(crate) struct CachedReader<T> {
        source: Arc<Publisher<T>>,
        version: u64,
        cached: Arc<T>,
    }

    impl<T> CachedReader<T> {
        pub(crate) fn new(publisher: &Arc<Publisher<T>>) -> Self {
            let (version, cached) = publisher.load_versioned();
            CachedReader {
                source: Arc::clone(publisher),
                version,
                cached,
            }
        }

        /// Revalidates with one relaxed load, as `arc_swap::Cache` does: the
        /// data itself is synchronized by the lock taken on a change.
        pub(crate) fn load(&mut self) -> &T {
            if self.source.version.load(Ordering::Relaxed) != self.version {
                (self.version, self.cached) = self.source.load_versioned();
            }
            &self.cached
        }
    }

    /// A concurrent map: a loom `Mutex<HashMap>`.
    #[derive(Debug)]
    pub(crate) struct Map<K, V>(Mutex<HashMap<K, V>>);

    impl<K, V> Default for Map<K, V> {
        fn default() -> Self {
            Map(Mutex::new(HashMap::new()))
        }
    }

    impl<K: Eq + Hash, V> Map<K, V> {
        pub(crate) fn get_cloned<Q>(&self, key: &Q) -> Option<V>
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
            V: Clone,
        {
            self.0.lock().get(key).cloned()
        }

        pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().contains_key(key)
        }

        pub(crate) fn insert(&self, key: K, value: V) {
            self.0.lock().insert(key, value);
        }

        pub(crate) fn insert_new(&self, key: K, value: V) -> bool {
            let mut map = self.0.lock();
            if map.contains_key(&key) {
                return false;
            }
            map.insert(key, value);
            true
        }

        pub(crate) fn remove<Q>(&self, key: &Q)
        where
            K: std::borrow::Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().remove(key);
        }

        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }
    }
}

/// What the loom models reach inside the crate: the mock clock, a replica's
/// in-flight count, and the roster a route used. Exists only under
/// `--cfg replica_router_loom`.
#[cfg(replica_router_loom)]
pub mod hooks {
    use std::time::Duration;

    use crate::{DaemonRuntime, GroupError, MemberInfo, RequestContext, Router};

    /// Advances the circuit's mock clock by `by`.
    pub fn advance_clock(by: Duration) {
        super::clock::advance(by);
    }

    /// The in-flight count of the replica with `origin_hash`, when registered.
    pub fn in_flight(runtime: &DaemonRuntime, origin_hash: u64) -> Option<u32> {
        runtime.in_flight_of(origin_hash)
    }

    /// One route, with the roster snapshot it was taken on.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Observed {
        /// The snapshot's epoch.
        pub epoch: u64,
        /// The snapshot's members, by index.
        pub members: Vec<MemberInfo>,
        /// What the route returned.
        pub routed: Result<u64, GroupError>,
    }

    /// Routes `ctx` on `router`, reporting the snapshot it routed on.
    pub fn route_observed(router: &mut Router, ctx: &RequestContext) -> Observed {
        let (epoch, members, routed) = router.route_observed(ctx);
        Observed {
            epoch,
            members,
            routed,
        }
    }
}
