//! A group's side of node failures and recoveries: replicas on a failed
//! node turn unhealthy and move to a free node with their identity; on
//! recovery, replicas still there turn healthy again.

use std::collections::BTreeSet;

use super::GroupState;
use crate::control::factories::create;
use crate::control::node_table::NodeTable;
use crate::control::placement::Placement;
use crate::control::registry::Registry;
use crate::sync::Arc;

impl GroupState {
    /// Marks the replicas on `node` unhealthy and re-places each on another
    /// node, keeping its identity. Returns the indices re-placed; replicas
    /// with no node left stay registered and unhealthy until a recovery or
    /// scale heals them.
    pub(in crate::control) fn fail_node(
        &mut self,
        node: u64,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Vec<u8> {
        let mut changed = false;
        for replica in self.replicas.iter().filter(|r| r.node_id() == node) {
            changed |= self.unhealthy.insert(replica.index());
        }
        let replaced = self.heal(nodes, registry);
        if changed || !replaced.is_empty() {
            self.changed = true;
            tracing::info!(node, ?replaced, "group failed over node");
        }
        replaced
    }

    /// Whether a replica's node cannot serve it: failed runtime-wide or
    /// reported failed to this group.
    fn node_down(&self, nodes: &NodeTable, node: u64) -> bool {
        !nodes.is_alive(node) || self.reported_failed.contains(&node)
    }

    /// Whether some replica waits for a node.
    pub(in crate::control) fn has_stuck(&self, nodes: &NodeTable) -> bool {
        self.replicas
            .iter()
            .any(|r| self.unhealthy.contains(&r.index()) && self.node_down(nodes, r.node_id()))
    }

    /// Re-places every replica whose node is down onto a free node, swapping
    /// its registry entry in one step (the old replica is retired at the next
    /// publish). Returns the indices moved.
    pub(in crate::control) fn heal(
        &mut self,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Vec<u8> {
        let stuck: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.node_down(nodes, self.replicas[i].node_id()))
            .collect();
        if stuck.is_empty() {
            return Vec::new();
        }
        let mut moves = Vec::new();
        {
            // Zone use counts only the replicas that stay; the nodes of the
            // replicas being moved are excluded, not counted as occupied.
            let staying = (0..self.replicas.len()).filter(|i| !stuck.contains(i));
            let mut placement = Placement::new(
                nodes,
                &self.requirements,
                staying.map(|i| self.replicas[i].node_id()),
                stuck
                    .iter()
                    .map(|&i| self.replicas[i].node_id())
                    .chain(self.reported_failed.iter().copied()),
            );
            for &i in &stuck {
                let Some(node) = placement.choose() else {
                    break;
                };
                if !nodes.hosts_here(node) {
                    moves.push((i, node, None));
                    continue;
                }
                match create(&*self.factory, &self.kind, self.group_id) {
                    Ok(daemon) => moves.push((i, node, Some(daemon))),
                    Err(error) => {
                        tracing::warn!(%error, "replacement replica not created");
                        break;
                    }
                }
            }
        }
        let mut moved = Vec::new();
        let mut replicas = self.replicas.to_vec();
        for (i, node, daemon) in moves {
            let old = Arc::clone(&replicas[i]);
            let settings = Arc::clone(&self.settings);
            let replica = Arc::new(crate::daemon::Replica::new(
                old.identity(),
                node,
                daemon,
                settings,
            ));
            registry.put(&replica);
            nodes.detach(old.node_id());
            nodes.attach(node);
            tracing::info!(
                index = i,
                from_node = old.node_id(),
                to_node = node,
                "replica re-placed"
            );
            self.leaving.push(old);
            replicas[i] = replica;
            self.unhealthy.remove(&(i as u8));
            self.term += 1;
            moved.push(i as u8);
        }
        if !moved.is_empty() {
            self.replicas = replicas.into();
            self.changed = true;
        }
        let down: BTreeSet<u8> = self
            .replicas
            .iter()
            .filter(|r| self.node_down(nodes, r.node_id()))
            .map(|r| r.index())
            .collect();
        self.unhealthy.extend(down);
        moved
    }

    /// Re-marks as healthy the replicas on `node` that are still the
    /// registered ones, when the node is up for this group. Then re-places
    /// replicas stuck elsewhere, which may now fit. Returns the number
    /// re-marked healthy.
    pub(in crate::control) fn recover_node(
        &mut self,
        node: u64,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> usize {
        let mut marked = 0;
        if !self.node_down(nodes, node) {
            for replica in self.replicas.iter().filter(|r| r.node_id() == node) {
                if self.unhealthy.contains(&replica.index()) && registry.holds(replica) {
                    self.unhealthy.remove(&replica.index());
                    replica.healthy_again();
                    marked += 1;
                }
            }
        }
        let moved = self.heal(nodes, registry);
        if marked > 0 || !moved.is_empty() {
            self.changed = true;
            tracing::info!(node, marked, "group recovered node");
        }
        marked
    }
}
