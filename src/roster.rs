//! The roster: an immutable snapshot of one group's members, published by the
//! writer through `ArcSwap` and read by every route.
//!
//! Everything a route needs is precomputed here (the healthy set, per-zone
//! sets, the Maglev table), so a route reads and never allocates. A roster is
//! never mutated after it is published; the next change builds a new one.

use std::collections::BTreeSet;

use crate::context::hash_bytes;
use crate::identity::Hex;
use crate::stats::ReplicaStats;
use crate::strategy::maglev::Maglev;
use crate::strategy::weighted::{self, AliasTable};
use crate::strategy::Strategy;
use crate::sync::Arc;
use crate::{GroupHealth, MemberInfo};

/// One member as routing sees it.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) index: u8,
    pub(crate) origin_hash: u64,
    pub(crate) node_id: u64,
    pub(crate) entity_id: [u8; 32],
    pub(crate) healthy: bool,
    pub(crate) weight: u32,
    /// Hash of the node's zone, if it has one.
    pub(crate) zone: Option<u64>,
    /// Hashes of the node's tags, sorted.
    pub(crate) tags: Box<[u64]>,
    /// Live statistics, shared with the replica's host.
    pub(crate) stats: Arc<ReplicaStats>,
}

impl Member {
    #[inline]
    pub(crate) fn has_tag(&self, tag_hash: u64) -> bool {
        self.tags.binary_search(&tag_hash).is_ok()
    }

    pub(crate) fn info(&self) -> MemberInfo {
        MemberInfo {
            index: self.index,
            origin_hash: self.origin_hash,
            node_id: self.node_id,
            entity_id_bytes: self.entity_id,
            healthy: self.healthy,
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("index", &self.index)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("node_id", &self.node_id)
            .field("entity_id", &Hex(&self.entity_id))
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

/// A healthy member as the route path reads it: what every strategy needs,
/// packed into 32 bytes (two per cache line).
#[derive(Debug, Clone)]
pub(crate) struct Hot {
    pub(crate) origin_hash: u64,
    /// Live statistics, shared with the replica's host.
    pub(crate) stats: Arc<ReplicaStats>,
    /// Bit `i` set when the member's node carries the roster's tag `i`.
    pub(crate) tags: u64,
    pub(crate) weight: u32,
    pub(crate) index: u8,
    /// Position of the member's zone in the roster's zone list, or [`NO_ZONE`].
    pub(crate) zone: u8,
}

/// [`Hot::zone`] of a member whose node has no zone.
pub(crate) const NO_ZONE: u8 = u8::MAX;

/// The healthy members of one zone.
#[derive(Debug)]
pub(crate) struct Zone {
    hash: u64,
    hot: Box<[Hot]>,
}

/// An immutable snapshot of a group.
#[derive(Debug)]
pub(crate) struct Roster {
    epoch: u64,
    term: u64,
    closed: bool,
    /// All members, ordered by index (indices are dense: member `i` is at `i`).
    members: Box<[Member]>,
    /// The healthy members, ascending by index.
    hot: Box<[Hot]>,
    /// Per zone (ordered by zone hash), its healthy members.
    zones: Box<[Zone]>,
    /// Tag hashes numbered for [`Hot::tags`]; at most 64, see `tags_overflow`.
    tag_bits: Box<[u64]>,
    /// Whether the members' nodes carry more than 64 distinct tags; tags past
    /// the 64th are then checked on the member itself.
    tags_overflow: bool,
    /// Maglev table over `hot` (slot → position in `hot`); shared with the
    /// previous roster when the healthy set did not change.
    maglev: Option<Arc<Maglev>>,
    /// Smooth weighted round-robin cycle (positions in `hot`).
    schedule: Box<[u8]>,
    /// Alias table over `hot`, for weighted random draws.
    alias: Option<AliasTable>,
}

impl Roster {
    /// Builds the roster for `members` (ordered by index) at `epoch`, reusing
    /// one of the `reusable` Maglev tables when it was built over the same
    /// healthy members (a failover that keeps identities, a toggle back).
    pub(crate) fn new(
        epoch: u64,
        term: u64,
        members: Vec<Member>,
        strategy: Strategy,
        reusable: &[Arc<Maglev>],
    ) -> Self {
        debug_assert!(members
            .iter()
            .enumerate()
            .all(|(i, m)| m.index as usize == i));
        let healthy: Vec<&Member> = members.iter().filter(|m| m.healthy).collect();
        let mut all_tags: Vec<u64> = healthy
            .iter()
            .flat_map(|m| m.tags.iter().copied())
            .collect();
        all_tags.sort_unstable();
        all_tags.dedup();
        let tags_overflow = all_tags.len() > 64;
        all_tags.truncate(64);
        let zone_hashes: BTreeSet<u64> = healthy.iter().filter_map(|m| m.zone).collect();
        let zone_hashes: Vec<u64> = zone_hashes.into_iter().take(NO_ZONE as usize).collect();
        let hot: Box<[Hot]> = healthy
            .iter()
            .map(|m| Hot {
                origin_hash: m.origin_hash,
                stats: Arc::clone(&m.stats),
                tags: all_tags
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| m.has_tag(**t))
                    .fold(0, |bits, (i, _)| bits | 1 << i),
                weight: m.weight,
                index: m.index,
                zone: m
                    .zone
                    .and_then(|z| zone_hashes.iter().position(|h| *h == z))
                    .map_or(NO_ZONE, |p| p as u8),
            })
            .collect();
        let zones = zone_hashes
            .iter()
            .enumerate()
            .map(|(p, &hash)| Zone {
                hash,
                hot: hot
                    .iter()
                    .filter(|h| h.zone as usize == p)
                    .cloned()
                    .collect(),
            })
            .collect();
        let maglev = if strategy.needs_maglev() {
            let keyed: Vec<(u64, u8)> = hot
                .iter()
                .enumerate()
                .map(|(p, h)| (h.origin_hash, p as u8))
                .collect();
            match reusable.iter().find(|t| t.is_over(&keyed)) {
                Some(table) => Some(Arc::clone(table)),
                None => Maglev::build(&keyed).map(Arc::new),
            }
        } else {
            None
        };
        let schedule = if strategy.needs_schedule() {
            weighted::schedule(&hot)
        } else {
            Box::default()
        };
        let alias = if strategy.needs_alias() {
            AliasTable::build(&hot)
        } else {
            None
        };
        Roster {
            epoch,
            term,
            closed: false,
            schedule,
            alias,
            members: members.into_boxed_slice(),
            hot,
            zones,
            tag_bits: all_tags.into(),
            tags_overflow,
            maglev,
        }
    }

    /// The roster of a runtime that has shut down: no members, and routes say so.
    pub(crate) fn closed(epoch: u64, term: u64) -> Self {
        Roster {
            closed: true,
            ..Roster::new(epoch, term, Vec::new(), Strategy::RoundRobin, &[])
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn term(&self) -> u64 {
        self.term
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    #[inline]
    pub(crate) fn member(&self, index: u8) -> &Member {
        &self.members[index as usize]
    }

    /// The healthy members, ascending by index.
    #[inline]
    pub(crate) fn hot(&self) -> &[Hot] {
        &self.hot
    }

    /// The zone with this hash: its position and its healthy members.
    #[inline]
    pub(crate) fn zone(&self, zone_hash: u64) -> Option<(u8, &[Hot])> {
        self.zones
            .iter()
            .position(|z| z.hash == zone_hash)
            .map(|p| (p as u8, &self.zones[p].hot[..]))
    }

    /// The bit of a tag in [`Hot::tags`]; `Err(true)` when the tag may still
    /// be carried past the 64th (check the member), `Err(false)` when no
    /// healthy member carries it.
    #[inline]
    pub(crate) fn tag_bit(&self, tag_hash: u64) -> Result<u64, bool> {
        match self.tag_bits.iter().position(|t| *t == tag_hash) {
            Some(i) => Ok(1 << i),
            None => Err(self.tags_overflow),
        }
    }

    #[inline]
    pub(crate) fn maglev(&self) -> Option<&Maglev> {
        self.maglev.as_deref()
    }

    /// The shared Maglev table, for the next roster to reuse.
    pub(crate) fn maglev_table(&self) -> Option<&Arc<Maglev>> {
        self.maglev.as_ref()
    }

    /// The weighted round-robin cycle; empty unless the strategy needs it.
    #[inline]
    pub(crate) fn schedule(&self) -> &[u8] {
        &self.schedule
    }

    #[inline]
    pub(crate) fn alias(&self) -> Option<&AliasTable> {
        self.alias.as_ref()
    }

    pub(crate) fn health(&self) -> GroupHealth {
        let total = self.members.len() as u8;
        let healthy = self.hot.len() as u8;
        if healthy == total && total > 0 {
            GroupHealth::Healthy
        } else if healthy == 0 {
            GroupHealth::Dead
        } else {
            GroupHealth::Degraded { healthy, total }
        }
    }
}

/// Hash of a zone or tag name, as stored in [`Member`].
pub(crate) fn label_hash(name: &str) -> u64 {
    hash_bytes(name.as_bytes())
}
