//! A group's growth and shrinking: new replicas placed on free nodes (their
//! identities off the shelf a shrink left, else derived), planned in full
//! before anything is committed; shrinking takes the highest indices first.

use super::GroupState;
use crate::control::factories::create;
use crate::control::node_table::NodeTable;
use crate::control::placement::Placement;
use crate::control::registry::Registry;
use crate::daemon::{Daemon, PublicIdentity, Replica};
use crate::error::GroupError;
use crate::identity::derive_replica_identity;
use crate::sync::Arc;

impl GroupState {
    /// The identity of replica `index`: off the shelf when a shrink left it
    /// there, else derived from the seed.
    pub(super) fn identity(&self, index: u8) -> PublicIdentity {
        match self.shelf.get(usize::from(index - self.len())) {
            Some(identity) => *identity,
            None => PublicIdentity::from(&derive_replica_identity(self.seed(), index)),
        }
    }

    /// Plans replicas `len..count`: daemons created, nodes chosen, identities
    /// derived; nothing registered yet.
    pub(super) fn plan_growth(
        &self,
        count: u8,
        mut first: Option<Daemon>,
        nodes: &NodeTable,
        registry: &Registry,
    ) -> Result<Vec<Arc<Replica>>, GroupError> {
        let mut placement = Placement::new(
            nodes,
            &self.requirements,
            self.replicas.iter().map(|r| r.node_id()),
            self.reported_failed.iter().copied(),
        );
        let mut grown = Vec::new();
        for index in self.len()..count {
            let node = placement.choose().ok_or_else(|| {
                GroupError::PlacementFailed(format!(
                    "group {:#010x} (kind `{}`) needs {count} replicas on distinct nodes and replica {index} has no node: {}",
                    self.group_id,
                    self.kind,
                    placement.explain()
                ))
            })?;
            let identity = self.identity(index);
            if registry.contains(identity.origin_hash) {
                return Err(GroupError::RegistryFailed(format!(
                    "origin hash {:#018x} of replica {index} of group {:#010x} is already registered",
                    identity.origin_hash, self.group_id
                )));
            }
            let daemon = match (nodes.hosts_here(node), first.take()) {
                (false, _) => None,
                (true, Some(d)) => Some(d),
                (true, None) => Some(create(&*self.factory, &self.kind, self.group_id)?),
            };
            let settings = Arc::clone(&self.settings);
            grown.push(Arc::new(Replica::new(identity, node, daemon, settings)));
        }
        Ok(grown)
    }

    pub(super) fn commit_growth(
        &mut self,
        grown: Vec<Arc<Replica>>,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) {
        let mut replicas = self.replicas.to_vec();
        self.shelf.drain(..grown.len().min(self.shelf.len()));
        for replica in grown {
            registry.put(&replica);
            nodes.attach(replica.node_id());
            replicas.push(replica);
        }
        self.replicas = replicas.into();
        self.changed = true;
    }

    /// Grows or shrinks to `count` replicas, and re-places replicas stuck on
    /// failed nodes on the way. All or nothing: when growth cannot be placed
    /// or created, nothing changes. Returns whether anything changed.
    pub(in crate::control) fn scale_to(
        &mut self,
        count: u8,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Result<bool, GroupError> {
        if count > self.len() {
            let grown = self.plan_growth(count, None, nodes, registry)?;
            // Commit growth before healing, so healing sees the new
            // replicas' nodes as taken.
            self.commit_growth(grown, nodes, registry);
            self.heal(nodes, registry);
            return Ok(true);
        }
        // Highest indices leave first; replicas stuck on failed nodes may
        // then move to the nodes that frees, so the node table forgets the
        // removed replicas before healing
        // (tests/regression_shrink_heals_onto_freed_node.rs).
        let mut replicas = self.replicas.to_vec();
        let removed = replicas.split_off(usize::from(count));
        self.replicas = replicas.into();
        self.unhealthy.retain(|&i| i < count);
        let mut shelf: Vec<PublicIdentity> = removed.iter().map(|r| r.identity()).collect();
        shelf.append(&mut self.shelf);
        self.shelf = shelf;
        for replica in &removed {
            nodes.detach(replica.node_id());
        }
        let healed = !self.heal(nodes, registry).is_empty();
        let shrunk = !removed.is_empty();
        self.leaving.extend(removed);
        self.changed |= shrunk || healed;
        Ok(shrunk || healed)
    }
}
