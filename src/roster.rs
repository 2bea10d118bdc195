//! The roster: an immutable snapshot of one group's members, published by the
//! writer through `ArcSwap` and read by every route.
//!
//! Everything a route needs is precomputed here (the healthy set, per-zone
//! sets, the Maglev table), so a route reads and never allocates. A roster is
//! never mutated after it is published; the next change builds a new one.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::context::hash_bytes;
use crate::identity::Hex;
use crate::stats::ReplicaStats;
use crate::strategy::maglev::Maglev;
use crate::strategy::Strategy;
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

/// An immutable snapshot of a group.
#[derive(Debug)]
pub(crate) struct Roster {
    epoch: u64,
    term: u64,
    closed: bool,
    /// All members, ordered by index (indices are dense: member `i` is at `i`).
    members: Box<[Member]>,
    /// Indices of the healthy members, ascending.
    healthy: Box<[u8]>,
    /// Zone hash → indices of the healthy members in that zone, ascending.
    zones: Box<[(u64, Box<[u8]>)]>,
    maglev: Option<Maglev>,
}

impl Roster {
    /// Builds the roster for `members` (ordered by index) at `epoch`.
    pub(crate) fn new(epoch: u64, term: u64, members: Vec<Member>, strategy: Strategy) -> Self {
        debug_assert!(members
            .iter()
            .enumerate()
            .all(|(i, m)| m.index as usize == i));
        let healthy: Box<[u8]> = members
            .iter()
            .filter(|m| m.healthy)
            .map(|m| m.index)
            .collect();
        let mut zones: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for m in members.iter().filter(|m| m.healthy) {
            if let Some(z) = m.zone {
                zones.entry(z).or_default().push(m.index);
            }
        }
        let maglev = if strategy.needs_maglev() {
            let keyed: Vec<(u64, u8)> = healthy
                .iter()
                .map(|&i| (members[i as usize].origin_hash, i))
                .collect();
            Maglev::build(&keyed)
        } else {
            None
        };
        Roster {
            epoch,
            term,
            closed: false,
            members: members.into_boxed_slice(),
            healthy,
            zones: zones.into_iter().map(|(z, v)| (z, v.into())).collect(),
            maglev,
        }
    }

    /// The roster of a runtime that has shut down: no members, and routes say so.
    pub(crate) fn closed(epoch: u64, term: u64) -> Self {
        Roster {
            closed: true,
            ..Roster::new(epoch, term, Vec::new(), Strategy::RoundRobin)
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

    #[inline]
    pub(crate) fn healthy(&self) -> &[u8] {
        &self.healthy
    }

    /// The healthy members in the zone with this hash, if any.
    #[inline]
    pub(crate) fn healthy_in_zone(&self, zone_hash: u64) -> Option<&[u8]> {
        self.zones
            .iter()
            .find(|(z, _)| *z == zone_hash)
            .map(|(_, set)| &set[..])
    }

    #[inline]
    pub(crate) fn maglev(&self) -> Option<&Maglev> {
        self.maglev.as_ref()
    }

    pub(crate) fn health(&self) -> GroupHealth {
        let total = self.members.len() as u8;
        let healthy = self.healthy.len() as u8;
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
