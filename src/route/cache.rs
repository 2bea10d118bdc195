//! The per-thread snapshot cache behind `ReplicaGroup::route_event`.
//!
//! A plain `ArcSwap::load` per route does two locked read-modify-writes and
//! costs as much as the uncontended mutex this crate replaces. Instead each
//! thread keeps up to [`WAYS`] `arc_swap::Cache` handles, tagged by group,
//! each revalidated by one pointer read, with the group's rotation cursor and
//! random generator beside it. The cached `Arc` keeps the roster alive, so
//! the comparison cannot be fooled by address reuse.
//!
//! Bounds: the cache is fully associative over [`WAYS`] groups, so a thread
//! routing on up to [`WAYS`] groups keeps exact per-group rotation whatever
//! the groups' ids. A thread that routes on more evicts the least recently
//! used group, which pays one full snapshot load and restarts its rotation
//! on its next route. Each entry keeps one roster alive until the entry is
//! refreshed or evicted, or the thread exits; when a group is removed, every
//! thread drops its entry at its next `route_event` (of any group), so a
//! removed group's roster outlives the removal only on threads that do not
//! route again, at most [`WAYS`] rosters each.

use std::cell::RefCell;

use super::roster::Roster;
use crate::hash::mix64;
use crate::strategy::{fresh_seed, PickState};
use crate::sync::atomic::Ordering;
use crate::sync::{process_counter, thread_local, Arc, ArcSwap, Cache};

process_counter!(REMOVALS = 0);

/// Called by the writer after it published a removed group's last roster:
/// every thread sweeps its cache at its next route.
pub(crate) fn note_removal() {
    REMOVALS.fetch_add(1, Ordering::Release);
}

/// Groups cached per thread.
pub(crate) const WAYS: usize = 8;

struct Entry {
    /// The group's uid; 0 is never one.
    uid: u64,
    cache: Cache<Arc<ArcSwap<Roster>>, Arc<Roster>>,
    state: PickState,
    last_used: u64,
}

/// One thread's cache.
struct Ways {
    entries: [Option<Entry>; WAYS],
    /// The way hit last: checked first, so a thread on one group compares once.
    recent: usize,
    clock: u64,
    /// Seeds the pick state of new entries, with the group's uid: drawn once
    /// per thread, so an eviction touches no process-wide counter.
    seed: u64,
    /// The removals this thread has swept for.
    removals: u64,
}

impl Ways {
    const fn new() -> Self {
        Ways {
            entries: [const { None }; WAYS],
            recent: 0,
            clock: 0,
            seed: 0,
            removals: 0,
        }
    }

    /// The entry of group `uid`, made (evicting the least recently used) if
    /// the thread has none. A thread routing on one group pays one
    /// comparison: recency is stamped only when the thread changes groups.
    #[inline(always)]
    fn entry(&mut self, uid: u64, roster: &Arc<ArcSwap<Roster>>) -> Option<&mut Entry> {
        let removals = REMOVALS.load(Ordering::Acquire);
        if removals != self.removals {
            self.sweep(removals);
        }
        let recent = self.recent % WAYS;
        if matches!(&self.entries[recent], Some(entry) if entry.uid == uid) {
            return self.entries[recent].as_mut();
        }
        self.switch(uid, roster);
        self.entries[self.recent % WAYS].as_mut()
    }

    /// Makes group `uid`'s way the recent one, after stamping the way the
    /// thread leaves.
    #[cold]
    #[inline(never)]
    fn switch(&mut self, uid: u64, roster: &Arc<ArcSwap<Roster>>) {
        self.clock += 1;
        if let Some(left) = &mut self.entries[self.recent % WAYS] {
            left.last_used = self.clock;
        }
        let cached = |e: &Option<Entry>| e.as_ref().is_some_and(|e| e.uid == uid);
        self.recent = match self.entries.iter().position(cached) {
            Some(way) => way,
            None => self.fill(uid, roster),
        };
    }

    /// Drops the entries of removed groups (their last roster says so).
    #[cold]
    fn sweep(&mut self, removals: u64) {
        self.removals = removals;
        for way in 0..WAYS {
            if let Some(entry) = &mut self.entries[way] {
                if entry.cache.load().is_removed() {
                    self.entries[way] = None;
                }
            }
        }
    }

    #[cold]
    fn fill(&mut self, uid: u64, roster: &Arc<ArcSwap<Roster>>) -> usize {
        let way = (0..WAYS)
            .min_by_key(|&w| self.entries[w].as_ref().map_or(0, |e| e.last_used))
            .unwrap_or(0);
        if self.seed == 0 {
            self.seed = fresh_seed() | 1;
        }
        self.entries[way] = Some(Entry {
            uid,
            cache: Cache::new(Arc::clone(roster)),
            state: PickState::new(mix64(self.seed ^ uid)),
            last_used: 0,
        });
        way
    }
}

thread_local! {
    static CACHE: RefCell<Ways> = const { RefCell::new(Ways::new()) };
}

/// Runs `f` on the calling thread's cached snapshot of the group with `uid`
/// and its pick state.
///
/// Return a small `R` and let `f` write the pick's outcome into the
/// caller's own scalars (as `route_event` and `ReplicaGroup::dispatch` do):
/// `LocalKey::try_with` may stay out of line, and a 16-byte result it
/// returned through memory was copied with a load spanning two 8-byte
/// stores, which the CPU cannot forward (`route_event` three times slower in
/// a user's binary; see BENCHMARKS.md). A generic helper over both callers,
/// with the pick in an `Option<T>`, measured 1 ns slower per route.
#[inline(always)]
pub(crate) fn with_roster<R>(
    uid: u64,
    roster: &Arc<ArcSwap<Roster>>,
    mut f: impl FnMut(&Roster, &mut PickState) -> R,
) -> R {
    let cached = CACHE.try_with(|ways| {
        // Only a re-entrant call could find the cell borrowed; it then takes
        // the uncached path instead of panicking.
        let mut ways = ways.try_borrow_mut().ok()?;
        let entry = ways.entry(uid, roster)?;
        Some(f(entry.cache.load(), &mut entry.state))
    });
    match cached {
        Ok(Some(result)) => result,
        // The thread is exiting (its locals are gone) or the call re-entered.
        _ => uncached(roster, f),
    }
}

#[cold]
#[inline(never)]
fn uncached<R>(
    roster: &Arc<ArcSwap<Roster>>,
    mut f: impl FnMut(&Roster, &mut PickState) -> R,
) -> R {
    f(&roster.load(), &mut PickState::new(fresh_seed()))
}
