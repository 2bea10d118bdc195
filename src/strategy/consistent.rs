//! Consistent hashing by slot migration: a small lookup table per roster, so
//! a keyed route is one multiply and one load, O(1) in the replica count.
//!
//! A key hashes to one of `T` slots (multiply-shift on the key hash). Which
//! replica owns a slot is decided in two steps:
//!
//! 1. **The layout of a group of N replicas**, built by adding replicas one
//!    at a time: the layout of 1 gives every slot to replica 0; going from k
//!    replicas to k + 1, the largest owners hand exactly the fair share,
//!    `⌊T / (k + 1)⌋` slots, to the new replica, so every replica ends with
//!    `⌊T / (k + 1)⌋` or one more. When k + 1 needs more slots (`T` is 16
//!    per replica, rounded up to a power of two), every slot is first split
//!    in two with its owner; multiply-shift maps a key to slot `2s` or
//!    `2s + 1` of the finer table exactly when it mapped to `s`, so the split
//!    moves no key. The layout depends on N alone and is shared by every
//!    group of that size.
//! 2. **The table of a roster**: each slot goes to its layout owner when that
//!    replica is a candidate; otherwise it re-probes, by a fixed hash of the
//!    slot, to the owner of another slot until it finds a candidate.
//!
//! What follows (guarantee 13 of the crate docs, checked by the tests below and in
//! `tests/consistent_hash.rs`):
//! - balance: every replica owns `T / N` slots, ± 1 (16 or more each);
//! - growing N → N + 1 moves exactly the new replica's fair share of slots,
//!   and shrinking (the highest index leaves) moves exactly its slots back;
//! - losing a replica (unhealthy) moves only its slots, spread over the
//!   others by the re-probe, and restoring it restores the exact table;
//! - the table is a function of the group's size and which of its replicas
//!   are candidates (equivalently, of their origin hashes, which the seed and
//!   index fix), so a failover that keeps identities moves no key.
//!
//! Memory: `T` bytes per roster, 64 B for 3 replicas and 4 KiB for 255
//! (Maglev's 65,537-slot table took 64 KiB whatever the size). Cost of a
//! table: one pass over `T` slots; a layout is built once per size.

use std::sync::OnceLock;

use super::candidates::Candidate;
use crate::hash::mix64;

/// Slots per replica, at least: the balance granularity (±1 slot in 16 is
/// ±6.25%, well within guarantee 13's ±15%).
const SLOTS_PER_REPLICA: usize = 16;

/// The number of slots of a group of `n` replicas.
fn table_size(n: usize) -> usize {
    SLOTS_PER_REPLICA * n.max(1).next_power_of_two()
}

/// The slot a key hash falls in, out of `size`.
#[inline(always)]
fn slot_of(key: u64, size: usize) -> usize {
    ((u128::from(key) * size as u128) >> 64) as usize
}

/// The layout of a group of `n` replicas (see the module docs): slot → the
/// index of the replica that owns it. Built once per size, then shared.
fn layout(n: u8) -> &'static [u8] {
    static LAYOUTS: [OnceLock<Box<[u8]>>; 256] = [const { OnceLock::new() }; 256];
    LAYOUTS[n as usize].get_or_init(|| build_layout(n))
}

fn build_layout(n: u8) -> Box<[u8]> {
    let n = usize::from(n).max(1);
    // Each replica's slots, as a stack: a replica hands over from its top.
    let mut owned: Vec<Vec<usize>> = vec![(0..table_size(1)).collect()];
    let mut size = table_size(1);
    for k in 1..n {
        // From k replicas to k + 1.
        while size < table_size(k + 1) {
            for slots in &mut owned {
                *slots = slots.iter().flat_map(|&s| [2 * s, 2 * s + 1]).collect();
            }
            size *= 2;
        }
        let share = size / (k + 1);
        // After the hand-over, `size % (k + 1)` of the existing replicas keep
        // one slot more than `share`: those owning the most now, lowest
        // index first.
        let mut extra = size % (k + 1);
        let most = owned.iter().map(Vec::len).max().unwrap_or(0);
        let mut keep: Vec<usize> = vec![share; k];
        for (j, slots) in owned.iter().enumerate() {
            if extra > 0 && slots.len() == most && most > share {
                keep[j] += 1;
                extra -= 1;
            }
        }
        for (j, slots) in owned.iter().enumerate() {
            if extra > 0 && keep[j] == share && slots.len() > share {
                keep[j] += 1;
                extra -= 1;
            }
        }
        let mut new: Vec<usize> = Vec::with_capacity(share + 1);
        for (j, slots) in owned.iter_mut().enumerate() {
            let give = slots.len() - keep[j];
            new.extend(slots.drain(slots.len() - give..));
        }
        owned.push(new);
    }
    let mut table = vec![0u8; size];
    for (owner, slots) in owned.iter().enumerate() {
        for &s in slots {
            table[s] = owner as u8;
        }
    }
    table.into_boxed_slice()
}

/// A roster's table: slot → position of its owner among the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SlotTable {
    slots: Box<[u8]>,
}

impl SlotTable {
    /// The table over `candidates` of a group of `group_size` replicas;
    /// `None` when there is no candidate.
    pub(super) fn build(candidates: &[Candidate], group_size: u8) -> Option<SlotTable> {
        if candidates.is_empty() {
            return None;
        }
        // Replica index → position among the candidates.
        let mut position = [u8::MAX; 256];
        for (p, c) in candidates.iter().enumerate() {
            position[c.index as usize] = p as u8;
        }
        let group_size = group_size.max(candidates.iter().map(|c| c.index).max().unwrap_or(0) + 1);
        let layout = layout(group_size);
        let owner_at = |s: usize| position[layout[s] as usize];
        let slots = (0..layout.len())
            .map(|s| {
                let owner = owner_at(s);
                if owner != u8::MAX {
                    return owner;
                }
                reprobe(s, layout.len(), owner_at)
            })
            .collect();
        Some(SlotTable { slots })
    }

    /// The position of the candidate owning `key`.
    #[inline]
    pub(super) fn lookup(&self, key: u64) -> u8 {
        self.slots[slot_of(key, self.slots.len())]
    }
}

/// Where slot `s`, whose owner is not a candidate, goes: the owner of the
/// slot a fixed hash sequence of `s` picks, first one that is a candidate.
/// Spreads a lost replica's slots over the others in proportion to what they
/// own; the same inputs always give the same answer.
fn reprobe(s: usize, size: usize, owner_at: impl Fn(usize) -> u8) -> u8 {
    for attempt in 1..=64u64 {
        let h = mix64((s as u64) ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let owner = owner_at(slot_of(h, size));
        if owner != u8::MAX {
            return owner;
        }
    }
    // Almost every replica is out (less than one in 64 probes lands on a
    // candidate): the next slot with a candidate owner, in slot order.
    (1..size)
        .map(|d| owner_at((s + d) % size))
        .find(|&o| o != u8::MAX)
        .expect("some candidate owns a slot")
}

/// The candidate owning `key`: the table's candidate when it is in `set` (its
/// zone is `zone`, when given) and admissible; otherwise (zone preference,
/// tag requirement or open circuit) the admissible candidate of `set` with
/// the highest rendezvous score for the key, which is just as sticky while
/// the set does not change. With a `balance` factor, a candidate with more
/// deliveries in flight than the factor times the group's mean is passed
/// over for the next one in the key's probe order (bounded load).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn keyed<'r>(
    table: &SlotTable,
    all: &'r [Candidate],
    set: &'r [Candidate],
    zone: Option<u8>,
    key: u64,
    balance: Option<f32>,
    admit: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    let owner = &all[table.lookup(key) as usize];
    let fits = |c: &Candidate| zone.is_none_or(|z| c.zone == z) && admit(c);
    if fits(owner) && balance.is_none() {
        return Some(owner);
    }
    match balance {
        Some(factor) => bounded(table, all, set, key, factor, fits),
        None => rendezvous(set, key, fits),
    }
}

/// The admissible candidate of `set` with the highest rendezvous score for
/// `key`.
fn rendezvous(
    set: &[Candidate],
    key: u64,
    fits: impl Fn(&Candidate) -> bool,
) -> Option<&Candidate> {
    set.iter()
        .filter(|c| fits(c))
        .max_by_key(|c| mix64(key ^ c.origin_hash()))
}

/// Bounded-load consistent hashing (Mirrokni et al.; HAProxy's
/// `hash-balance-factor`): the capacity of each candidate is
/// `⌈factor × (group in flight + 1) / candidates⌉`; the key goes to its
/// owner if the owner is under it, else to the first candidate under it in
/// the key's own probe order (the owners of the key rehashed 1, 2, …), else
/// to the least busy. A cold key stays with its owner; a hot key's
/// overflow spills, always the same way.
#[cold]
#[inline(never)]
fn bounded<'r>(
    table: &SlotTable,
    all: &'r [Candidate],
    set: &'r [Candidate],
    key: u64,
    factor: f32,
    fits: impl Fn(&Candidate) -> bool,
) -> Option<&'r Candidate> {
    let total = all.first()?.replica().settings().total_in_flight();
    let capacity = (factor * (total + 1) as f32 / all.len() as f32).ceil() as u32;
    let under = |c: &Candidate| fits(c) && c.replica().stats().in_flight() < capacity;
    for probe in 0..all.len() as u64 {
        let hash = if probe == 0 { key } else { mix64(key ^ probe) };
        let candidate = &all[table.lookup(hash) as usize];
        if under(candidate) {
            return Some(candidate);
        }
    }
    set.iter()
        .filter(|c| fits(c))
        .min_by_key(|c| c.replica().stats().in_flight())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owner (replica index) of each of `keys` when the replicas in
    /// `healthy` of a group of `n` are candidates.
    fn owners(n: u8, healthy: &[u8], keys: &[u64]) -> Vec<u8> {
        let layout = layout(n);
        let mut position = [u8::MAX; 256];
        for (p, &i) in healthy.iter().enumerate() {
            position[i as usize] = p as u8;
        }
        let owner_at = |s: usize| position[layout[s] as usize];
        keys.iter()
            .map(|&k| {
                let s = slot_of(k, layout.len());
                let p = match owner_at(s) {
                    u8::MAX => reprobe(s, layout.len(), owner_at),
                    p => p,
                };
                healthy[p as usize]
            })
            .collect()
    }

    fn keys() -> Vec<u64> {
        (0..20_000u64).map(|k| mix64(k ^ 0xabcdef)).collect()
    }

    #[test]
    fn every_replica_owns_a_fair_share_of_slots() {
        for n in 1..=255u8 {
            let layout = layout(n);
            let mut counts = vec![0usize; n as usize];
            for &owner in layout {
                counts[owner as usize] += 1;
            }
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} replicas: {lo}..{hi}");
            assert!(*lo >= SLOTS_PER_REPLICA, "{n} replicas: {lo} slots");
        }
    }

    #[test]
    fn growing_moves_only_the_new_replicas_share() {
        let ks = keys();
        for n in 1..=254u8 {
            let all: Vec<u8> = (0..=n).collect();
            let before = owners(n, &all[..n as usize], &ks);
            let after = owners(n + 1, &all, &ks);
            for (b, a) in before.iter().zip(&after) {
                assert!(
                    a == b || *a == n,
                    "{n} → {}: a key moved between old replicas",
                    n + 1
                );
            }
        }
    }

    #[test]
    fn losing_a_replica_moves_only_its_keys_and_restoring_it_restores_them() {
        let ks = keys();
        for n in [2u8, 3, 10, 64, 255] {
            let all: Vec<u8> = (0..n).collect();
            let base = owners(n, &all, &ks);
            for lost in [0, n / 2, n - 1] {
                let rest: Vec<u8> = all.iter().copied().filter(|&i| i != lost).collect();
                let without = owners(n, &rest, &ks);
                for (b, w) in base.iter().zip(&without) {
                    assert!(
                        b == w || *b == lost,
                        "{n}, losing {lost}: another key moved"
                    );
                }
                assert_eq!(owners(n, &all, &ks), base, "restored");
            }
        }
    }

    #[test]
    fn a_lost_replicas_keys_spread_over_the_others() {
        let ks = keys();
        let n = 10u8;
        let rest: Vec<u8> = (1..n).collect();
        let mut counts = vec![0usize; n as usize];
        for o in owners(n, &rest, &ks) {
            counts[o as usize] += 1;
        }
        let fair = ks.len() / (n as usize - 1);
        for (i, &c) in counts.iter().enumerate().skip(1) {
            assert!(
                c.abs_diff(fair) * 100 <= fair * 15,
                "replica {i}: {c} keys, fair {fair}"
            );
        }
    }

    #[test]
    fn splitting_a_slot_moves_no_key() {
        for key in (0..10_000u64).map(mix64) {
            for size in [16usize, 32, 64, 4096] {
                let s = slot_of(key, size);
                let fine = slot_of(key, 2 * size);
                assert!(fine == 2 * s || fine == 2 * s + 1);
            }
        }
    }

    #[test]
    #[ignore = "prints table build times; run with --release --ignored --nocapture"]
    fn print_build_times() {
        for n in [3u8, 10, 64, 255] {
            let t = std::time::Instant::now();
            let _ = build_layout(n);
            println!("{n} replicas: layout {:?}", t.elapsed());
        }
    }
}
