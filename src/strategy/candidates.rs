//! Candidates: a group's healthy replicas as every pick reads them, grouped
//! by zone, with their nodes' tags numbered as bits. Built by the writer
//! with each roster; immutable once published.

use std::collections::BTreeSet;

use crate::daemon::Replica;
use crate::sync::Arc;

/// Where a replica sits, as routing weighs it: its node's weight, zone and
/// tags (hashed with [`crate::hash::hash_bytes`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Locale {
    pub(crate) weight: u32,
    pub(crate) zone: Option<u64>,
    /// Sorted.
    pub(crate) tags: Box<[u64]>,
}

/// A healthy replica as every pick reads it, packed into 24 bytes; its
/// origin hash is read from the replica, beside the circuit state every
/// route reads anyway.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    replica: Arc<Replica>,
    /// Bit `i` set when the replica's node carries the pool's tag `i`.
    pub(super) tags: u64,
    pub(super) weight: u32,
    pub(super) index: u8,
    /// Position of the replica's zone in the pool's zone list, or [`NO_ZONE`].
    pub(super) zone: u8,
}

impl Candidate {
    #[inline]
    pub(crate) fn origin_hash(&self) -> u64 {
        self.replica.origin_hash()
    }

    #[inline]
    pub(crate) fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }
}

/// [`Candidate::zone`] of a replica whose node has no zone.
pub(super) const NO_ZONE: u8 = u8::MAX;

/// Where the candidates of one zone sit among all of them.
#[derive(Debug)]
struct Zone {
    hash: u64,
    start: u8,
    len: u8,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    /// Grouped by zone (in zone order, the zoneless last), ascending by
    /// replica index within a zone: each zone's candidates are a slice of
    /// these, with no copy.
    candidates: Box<[Candidate]>,
    /// Per zone (ordered by zone hash), its slice of the candidates.
    zones: Box<[Zone]>,
    /// Tag hashes numbered for [`Candidate::tags`]; at most 64.
    tag_bits: Box<[u64]>,
    /// When the nodes carry more than 64 distinct tags: every candidate's
    /// sorted tags, by replica index, checked for the tags past the 64th.
    overflow_tags: Option<Box<[Box<[u64]>]>>,
}

impl Candidates {
    /// The candidates over `healthy` (ascending by index).
    pub(super) fn build(healthy: &[(Arc<Replica>, &Locale)]) -> Candidates {
        let mut all_tags: Vec<u64> = healthy
            .iter()
            .flat_map(|(_, l)| l.tags.iter().copied())
            .collect();
        all_tags.sort_unstable();
        all_tags.dedup();
        let overflow = all_tags.len() > 64;
        all_tags.truncate(64);
        let zone_hashes: BTreeSet<u64> = healthy.iter().filter_map(|(_, l)| l.zone).collect();
        let zone_hashes: Vec<u64> = zone_hashes.into_iter().take(NO_ZONE as usize).collect();
        let mut candidates: Vec<Candidate> = healthy
            .iter()
            .map(|(replica, locale)| Candidate {
                replica: Arc::clone(replica),
                tags: all_tags
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| locale.tags.binary_search(t).is_ok())
                    .fold(0, |bits, (i, _)| bits | 1 << i),
                weight: locale.weight,
                index: replica.index(),
                zone: locale
                    .zone
                    .and_then(|z| zone_hashes.iter().position(|h| *h == z))
                    .map_or(NO_ZONE, |p| p as u8),
            })
            .collect();
        candidates.sort_by_key(|c| (c.zone, c.index));
        let zones = zone_hashes
            .iter()
            .enumerate()
            .map(|(p, &hash)| {
                let start = candidates.partition_point(|c| (c.zone as usize) < p);
                let end = candidates.partition_point(|c| (c.zone as usize) <= p);
                Zone {
                    hash,
                    start: start as u8,
                    len: (end - start) as u8,
                }
            })
            .collect();
        let overflow_tags = overflow.then(|| {
            let mut by_index = vec![Box::default(); 256];
            for (replica, locale) in healthy {
                by_index[replica.index() as usize] = locale.tags.clone();
            }
            by_index.into_boxed_slice()
        });
        Candidates {
            candidates: candidates.into_boxed_slice(),
            zones,
            tag_bits: all_tags.into(),
            overflow_tags,
        }
    }

    /// Every candidate, grouped by zone.
    #[inline]
    pub(crate) fn all(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The zone with this hash: its position and its candidates.
    #[inline]
    pub(super) fn zone(&self, zone_hash: u64) -> Option<(u8, &[Candidate])> {
        let p = self.zones.iter().position(|z| z.hash == zone_hash)?;
        let zone = &self.zones[p];
        let start = zone.start as usize;
        Some((p as u8, &self.candidates[start..start + zone.len as usize]))
    }

    /// The bit of a tag in [`Candidate::tags`]; `Err(true)` when the tag may
    /// still be carried past the 64th (check the candidate), `Err(false)`
    /// when no candidate carries it.
    #[inline]
    pub(super) fn tag_bit(&self, tag_hash: u64) -> Result<u64, bool> {
        match self.tag_bits.iter().position(|t| *t == tag_hash) {
            Some(i) => Ok(1 << i),
            None => Err(self.overflow_tags.is_some()),
        }
    }

    /// Whether `candidate`'s node carries the tag, checked on its full tag
    /// list (kept only when the pool numbers some tags past the 64th).
    pub(super) fn carries_tag(&self, candidate: &Candidate, tag_hash: u64) -> bool {
        self.overflow_tags.as_ref().is_some_and(|tags| {
            tags[candidate.index as usize]
                .binary_search(&tag_hash)
                .is_ok()
        })
    }
}
