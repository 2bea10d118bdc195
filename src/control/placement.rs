//! Placement: which node a new or moved replica goes to.
//!
//! The rule (guarantee 3): a node not already holding a member of the group,
//! alive, carrying the daemon's required tags; among those, prefer the zone
//! the group uses least, then the node hosting the fewest replicas, then the
//! lowest node id. Every choice is added to the exclusion set inside the loop,
//! so one plan never puts two members on one node. The function is
//! deterministic: no hash-map order, no randomness.

use std::collections::{BTreeMap, BTreeSet};

use super::node_table::NodeTable;
use crate::node::CapabilityFilter;

/// A placement plan being built for one group, over a snapshot of the table.
/// Nothing is changed until the caller commits the chosen nodes.
#[derive(Debug)]
pub(crate) struct Placement<'a> {
    nodes: &'a NodeTable,
    filter: &'a CapabilityFilter,
    excluded: BTreeSet<u64>,
    zone_use: BTreeMap<Option<&'a str>, usize>,
    extra_load: BTreeMap<u64, usize>,
}

impl<'a> Placement<'a> {
    /// A plan for a group whose members now sit on `occupied` nodes; nodes in
    /// `also_excluded` are never chosen (e.g. nodes reported failed to the group).
    pub(crate) fn new(
        nodes: &'a NodeTable,
        filter: &'a CapabilityFilter,
        occupied: impl IntoIterator<Item = u64>,
        also_excluded: impl IntoIterator<Item = u64>,
    ) -> Self {
        let mut zone_use = BTreeMap::new();
        let mut excluded = BTreeSet::new();
        for id in occupied {
            if excluded.insert(id) {
                if let Some(node) = nodes.get(id) {
                    *zone_use.entry(node.info().zone()).or_default() += 1;
                }
            }
        }
        excluded.extend(also_excluded);
        Placement {
            nodes,
            filter,
            excluded,
            zone_use,
            extra_load: BTreeMap::new(),
        }
    }

    /// Chooses the next node, or `None` when no eligible node is left.
    pub(crate) fn choose(&mut self) -> Option<u64> {
        let best = self
            .nodes
            .iter()
            .filter(|n| n.is_alive() && !self.excluded.contains(&n.info().id()))
            .filter(|n| self.filter.matches(n.info()))
            .min_by_key(|n| {
                let id = n.info().id();
                let zone = self.zone_use.get(&n.info().zone()).copied().unwrap_or(0);
                let load = n.hosted() + self.extra_load.get(&id).copied().unwrap_or(0);
                (zone, load, id)
            })?;
        let id = best.info().id();
        self.excluded.insert(id);
        *self.zone_use.entry(best.info().zone()).or_default() += 1;
        *self.extra_load.entry(id).or_default() += 1;
        Some(id)
    }

    /// Why `choose` found nothing, for `PlacementFailed`.
    pub(crate) fn explain(&self) -> String {
        let alive = self.nodes.iter().filter(|n| n.is_alive()).count();
        let matching = self
            .nodes
            .iter()
            .filter(|n| n.is_alive() && self.filter.matches(n.info()))
            .count();
        let tags: Vec<&str> = self.filter.tags().collect();
        format!(
            "no eligible node left: {alive} alive node(s), {matching} carrying the required tags {tags:?}, \
             all of them already hold a member of the group or are excluded"
        )
    }
}
