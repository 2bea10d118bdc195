//! A router's cost floor: the lowest latency cost it has seen lately, so a
//! pick between two can tell that both were bad.
//!
//! `LeastLatency` and `Adaptive` compare two candidates. When those two are
//! the slow replica and the failing one, the better of two bad ones wins, and
//! a cheap replica elsewhere in the group is never looked at: with two bad
//! replicas of four, a third of the picks went to the slow one. So a pick
//! whose winner costs [clearly more](Floor::exceeded_by) than the floor looks
//! further (`least::cheapest_near`). The floor follows the costs seen in each
//! pick and rises by 1/16 a pick, so when every replica slows down it
//! catches up in a few dozen picks.

/// The lowest cost seen lately, in the units of `least::latency_costs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Floor(f32);

/// How much the floor rises per pick that sees nothing lower.
const RISE: f32 = 1.0 + 1.0 / 16.0;

impl Floor {
    /// No cost seen yet: nothing exceeds it.
    pub(crate) const fn new() -> Self {
        Floor(f32::INFINITY)
    }

    /// Notes a cost seen in a pick: the floor is the lower of it and the
    /// floor risen by 1/16.
    #[inline]
    pub(super) fn note(&mut self, cost: f32) {
        self.0 = (self.0 * RISE).min(cost);
    }

    /// Whether `cost` is clearly above the floor: more than twice it.
    #[inline]
    pub(super) fn exceeded_by(self, cost: f32) -> bool {
        self.0 * 2.0 < cost
    }
}

#[cfg(test)]
mod tests {
    use super::Floor;

    #[test]
    fn follows_the_lowest_cost_and_rises_when_costs_do() {
        let mut floor = Floor::new();
        assert!(
            !floor.exceeded_by(f32::MAX),
            "nothing seen, nothing exceeds"
        );
        floor.note(20.0);
        assert!(!floor.exceeded_by(40.0));
        assert!(floor.exceeded_by(200.0));
        // Every replica ten times slower: within 40 picks 200 is normal.
        for _ in 0..40 {
            floor.note(200.0);
        }
        assert!(!floor.exceeded_by(200.0));
        assert!(floor.exceeded_by(2_000.0));
        // A cheaper one seen again brings it straight down.
        floor.note(20.0);
        assert!(floor.exceeded_by(200.0));
    }
}
