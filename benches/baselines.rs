//! Baselines the route benchmarks compare against, run in the same process.

#![allow(dead_code)]

use parking_lot::Mutex;

/// The design this crate replaces: group state behind an uncontended
/// `parking_lot::Mutex`, round robin done under the lock by scanning for a
/// healthy member.
pub(crate) struct MutexGroup {
    state: Mutex<MutexState>,
}

struct MutexState {
    members: Vec<(u64, bool)>,
    cursor: usize,
}

impl MutexGroup {
    pub(crate) fn new(hashes: impl IntoIterator<Item = u64>) -> Self {
        MutexGroup {
            state: Mutex::new(MutexState {
                members: hashes.into_iter().map(|h| (h, true)).collect(),
                cursor: 0,
            }),
        }
    }

    #[inline(never)]
    pub(crate) fn route(&self) -> Option<u64> {
        let mut s = self.state.lock();
        let n = s.members.len();
        for _ in 0..n {
            let i = s.cursor % n;
            s.cursor = s.cursor.wrapping_add(1);
            if s.members[i].1 {
                return Some(s.members[i].0);
            }
        }
        None
    }
}
