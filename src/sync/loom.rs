//! The loom side of the switch: loom's atomics, locks, threads and
//! thread-locals, and small stand-ins for the three third-party types loom
//! cannot see into. Each stand-in keeps the method names the crate calls on
//! the real type and reproduces the ordering the crate relies on:
//!
//! - [`ArcSwap`] / [`Cache`]: the value sits behind a loom mutex with a
//!   version number in a loom atomic; a store swaps both under the lock, and
//!   a cache compares its version with one relaxed load and takes the lock
//!   only when it changed. That is `arc_swap::Cache`'s protocol (compare the
//!   pointer with one relaxed load, `load_full` on change), visible to loom,
//!   so the models check the writer's publish protocol itself.
//! - [`DashMap`]: a loom `Mutex<HashMap>`; the registry's ordering against
//!   the published roster is what the models check, not dashmap's sharding.
//! - [`channel`]: `loom::sync::mpsc` under crossbeam's constructor names.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

pub(crate) use loom::sync::atomic;
pub(crate) use loom::thread;

use loom::sync::atomic::{AtomicU64, Ordering};

/// `std::thread_local!` over loom's, which (an edition-2018 macro) does not
/// parse a `const { .. }` initializer: that form is unwrapped.
macro_rules! loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr } $(;)?) => {
        ::loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr $(;)?) => {
        ::loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
    };
}
pub(crate) use loom_thread_local as thread_local;

/// See the shipped `process_counter!`: here it starts over in every execution.
macro_rules! process_counter {
    ($name:ident = $first:expr) => {
        ::loom::lazy_static! {
            static ref $name: ::loom::sync::atomic::AtomicU64 = ::loom::sync::atomic::AtomicU64::new($first);
        }
    };
}
pub(crate) use process_counter;

/// The circuit's clock: a mock that stands still until a model advances it,
/// so a model decides exactly when a window has passed.
pub(crate) fn now_ns() -> u64 {
    MOCK_NOW.load(Ordering::SeqCst)
}

loom::lazy_static! {
    static ref MOCK_NOW: AtomicU64 = AtomicU64::new(1);
}

/// The coarse clock: the mock clock in milliseconds.
pub(crate) fn coarse_ms() -> u32 {
    (now_ns() / 1_000_000) as u32
}

/// The coarse clock at `_at`: the mock clock's (loom does not see `Instant`).
pub(crate) fn tick_coarse(_at: std::time::Instant) -> u32 {
    coarse_ms()
}

/// The coarse clock now: the mock clock's.
pub(crate) fn coarse_now() -> u32 {
    coarse_ms()
}

/// Advances the mock clock (see `crate::loom_hooks`).
pub(crate) fn advance_clock(by: std::time::Duration) {
    let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX >> 2);
    MOCK_NOW.fetch_add(ns, Ordering::SeqCst);
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

    pub(crate) fn try_lock(&self) -> Option<loom::sync::MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}

/// `arc_swap::ArcSwap` (see the module docs).
pub(crate) struct ArcSwap<T> {
    version: AtomicU64,
    current: Mutex<(u64, Arc<T>)>,
}

/// What `ArcSwap::load` returns: the value, kept alive while held.
pub(crate) struct Guard<T>(Arc<T>);

impl<T> Deref for Guard<T> {
    type Target = Arc<T>;

    fn deref(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T> ArcSwap<T> {
    pub(crate) fn from_pointee(value: T) -> Self {
        ArcSwap {
            version: AtomicU64::new(0),
            current: Mutex::new((0, Arc::new(value))),
        }
    }

    /// Swaps the value and bumps the version under the lock; the version is
    /// stored `SeqCst`, as `ArcSwap::store` swaps its pointer.
    pub(crate) fn store(&self, value: Arc<T>) {
        let mut current = self.current.lock();
        let version = current.0 + 1;
        *current = (version, value);
        self.version.store(version, Ordering::SeqCst);
    }

    pub(crate) fn load(&self) -> Guard<T> {
        Guard(self.load_full())
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        Arc::clone(&self.current.lock().1)
    }

    fn load_versioned(&self) -> (u64, Arc<T>) {
        let current = self.current.lock();
        (current.0, Arc::clone(&current.1))
    }
}

impl<T> std::fmt::Debug for ArcSwap<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcSwap").finish_non_exhaustive()
    }
}

/// `arc_swap::Cache` over an [`ArcSwap`] reached through `A`.
pub(crate) struct Cache<A, T> {
    source: A,
    version: u64,
    cached: T,
}

impl<A, U> Cache<A, Arc<U>>
where
    A: Deref<Target = ArcSwap<U>>,
{
    pub(crate) fn new(source: A) -> Self {
        let (version, cached) = source.load_versioned();
        Cache {
            source,
            version,
            cached,
        }
    }

    /// Revalidates with one relaxed load, as `arc_swap::Cache` does: the data
    /// itself is synchronized by the lock taken on a change.
    pub(crate) fn load(&mut self) -> &Arc<U> {
        if self.source.version.load(Ordering::Relaxed) != self.version {
            (self.version, self.cached) = self.source.load_versioned();
        }
        &self.cached
    }
}

/// `dashmap::DashMap` as a loom `Mutex<HashMap>`.
#[derive(Debug)]
pub(crate) struct DashMap<K, V>(Mutex<HashMap<K, V>>);

/// What `DashMap::get` returns: here, a clone of the value.
pub(crate) struct Ref<V>(V);

impl<V> Ref<V> {
    pub(crate) fn value(&self) -> &V {
        &self.0
    }
}

impl<V> Deref for Ref<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.0
    }
}

/// `dashmap::Entry`, reduced to what the crate uses.
pub(crate) enum Entry<'a, K, V> {
    Occupied(()),
    Vacant(VacantEntry<'a, K, V>),
}

/// A vacant entry: the map stays locked until it is filled or dropped.
pub(crate) struct VacantEntry<'a, K, V> {
    map: loom::sync::MutexGuard<'a, HashMap<K, V>>,
    key: K,
}

impl<K: Eq + Hash, V> VacantEntry<'_, K, V> {
    pub(crate) fn insert(mut self, value: V) {
        self.map.insert(self.key, value);
    }
}

impl<K, V> Default for DashMap<K, V> {
    fn default() -> Self {
        DashMap(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> DashMap<K, V> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<Ref<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().get(key).cloned().map(Ref)
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().contains_key(key)
    }

    pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
        self.0.lock().insert(key, value)
    }

    pub(crate) fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.0.lock();
        map.remove_entry(key)
    }

    pub(crate) fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&K, &V) -> bool) -> Option<(K, V)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.0.lock();
        let keep = match map.get_key_value(key) {
            Some((k, v)) => !f(k, v),
            None => true,
        };
        if keep {
            None
        } else {
            map.remove_entry(key)
        }
    }

    pub(crate) fn entry(&self, key: K) -> Entry<'_, K, V> {
        let map = self.0.lock();
        if map.contains_key(&key) {
            Entry::Occupied(())
        } else {
            Entry::Vacant(VacantEntry { map, key })
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.0.lock().capacity()
    }

    pub(crate) fn shrink_to_fit(&self) {
        self.0.lock().shrink_to_fit();
    }
}

/// Receives the next message: blocking at once (loom explores what a spin
/// would do anyway, and a spin loop is no model).
pub(crate) fn recv_soon<T>(
    receiver: &channel::Receiver<T>,
) -> Result<T, std::sync::mpsc::RecvError> {
    receiver.recv()
}

/// No queued message: under loom the writer applies one command per batch,
/// which keeps the models small; the batch logic (publish, then answer)
/// runs all the same.
pub(crate) fn try_recv_queued<T>(_: &channel::Receiver<T>) -> Option<T> {
    None
}

/// `crossbeam_channel`, over `loom::sync::mpsc` (see the module docs).
pub(crate) mod channel {
    pub(crate) use loom::sync::mpsc::{Receiver, Sender};

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        loom::sync::mpsc::channel()
    }

    /// Reply channels carry exactly one message, so the bound never applies.
    pub(crate) fn bounded<T>(_capacity: usize) -> (Sender<T>, Receiver<T>) {
        loom::sync::mpsc::channel()
    }
}
