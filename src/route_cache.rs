//! The per-thread snapshot cache behind `ReplicaGroup::route_event`.
//!
//! A plain `ArcSwap::load` per route does two locked read-modify-writes and
//! costs as much as the uncontended mutex this crate replaces. Instead each
//! thread keeps a few `arc_swap::Cache` handles, keyed by group, revalidated
//! by one pointer read; the cached `Arc` keeps the old roster alive, so the
//! comparison cannot be fooled by address reuse.
//!
//! Bounds: [`SLOTS`] groups per thread, direct-mapped by the group's unique
//! id. A thread that routes on more groups evicts (and pays one full load on
//! the next route of the evicted group). Each slot keeps one roster alive,
//! even of a dropped group, until the slot is reused or the thread exits.

use std::cell::RefCell;

use crate::context::RequestContext;
use crate::error::GroupError;
use crate::roster::Roster;
use crate::strategy::{self, PickState, Strategy};
use crate::sync::{thread_local, Arc, CachedReader, Publisher};

/// Groups cached per thread.
pub(crate) const SLOTS: usize = 8;

struct Entry {
    uid: u64,
    cache: CachedReader<Roster>,
    state: PickState,
}

thread_local! {
    static CACHE: RefCell<[Option<Entry>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// Routes on the calling thread's cached snapshot of the group with `uid`.
#[inline]
pub(crate) fn route(
    uid: u64,
    roster: &Arc<Publisher<Roster>>,
    strategy: Strategy,
    ctx: &RequestContext,
) -> Result<u64, GroupError> {
    let cached = CACHE.try_with(|slots| {
        // Only a re-entrant call could find the cell borrowed; it then takes
        // the uncached path instead of panicking.
        let mut slots = slots.try_borrow_mut().ok()?;
        let slot = &mut slots[(uid % SLOTS as u64) as usize];
        let entry = match slot {
            Some(entry) if entry.uid == uid => entry,
            _ => slot.insert(Entry {
                uid,
                cache: CachedReader::new(roster),
                state: PickState::new(),
            }),
        };
        let snapshot = entry.cache.load();
        Some(strategy::route(strategy, snapshot, ctx, &mut entry.state))
    });
    let routed = match cached {
        Ok(Some(result)) => result,
        // The thread is exiting (its locals are gone) or the call re-entered.
        _ => strategy::route(strategy, &roster.load(), ctx, &mut PickState::new()),
    };
    routed.map_err(GroupError::from)
}
