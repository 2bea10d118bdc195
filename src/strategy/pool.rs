//! The pool a strategy picks from, stored opaquely in each roster: the
//! candidates, and the table the group's strategy built over them (each
//! table type is owned by its strategy's file), in two tiers. A replica on
//! a node of weight 0 is drained: it is a last resort, picked only when no
//! weighted replica can take the request, in every strategy.

use super::candidates::Candidates;
use super::consistent::SlotTable;
use super::weighted::AliasTable;
use crate::daemon::Decay;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// The replicas on weighted nodes (all of them when every weight is 0).
    pub(super) weighted: Tier,
    /// The replicas on nodes of weight 0, when some other node has a weight.
    pub(super) drained: Option<Box<Tier>>,
}

/// Candidates, the strategy's table over them, and the group's tuning.
#[derive(Debug, Default)]
pub(super) struct Tier {
    pub(super) candidates: Candidates,
    pub(super) tables: Tables,
    pub(super) tuning: Tuning,
}

/// The group's settings that routes apply, copied from its
/// `DaemonHostConfig` when the roster is built.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tuning {
    /// How fast latency estimates fade (`latency_decay`).
    pub(super) decay: Decay,
    /// The slow-start window in milliseconds, when a candidate was still
    /// ramping up when the roster was built (else no ramp is checked).
    pub(super) ramp_ms: Option<u32>,
    /// The bounded-load factor of consistent hashing (`hash_balance_factor`).
    pub(super) balance: Option<f32>,
}

/// What the group's strategy precomputed over the candidates; empty for the
/// strategies that need nothing.
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// `ConsistentHash`, `Adaptive`: slot → position of the owner.
    pub(super) slots: Option<SlotTable>,
    /// `WeightedRoundRobin`, `Adaptive`: one smooth weighted cycle of positions.
    pub(super) schedule: Box<[u8]>,
    /// `WeightedRandom`: an alias table over the candidates.
    pub(super) alias: Option<AliasTable>,
}

impl Pool {
    /// The number of candidates, weighted or drained.
    pub(crate) fn len(&self) -> usize {
        self.weighted.candidates.all().len()
            + self
                .drained
                .as_ref()
                .map_or(0, |d| d.candidates.all().len())
    }
}
