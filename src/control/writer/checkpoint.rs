//! The writer's side of cluster checkpoints (feature `etcd`): its state as
//! plain data ([`WriterState`]), and a fresh writer restored from it.

use super::Writer;
use crate::control::command::GroupRef;
use crate::control::group_state::GroupState;
use crate::control::node_table::NodeTable;
use crate::control::snapshot::{NodeState, WriterState};
use crate::error::GroupError;
use crate::identity::group_id_of;
use crate::sync::Arc;

impl Writer {
    pub(super) fn snapshot(&self) -> WriterState {
        WriterState {
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeState {
                    info: n.info().clone(),
                    alive: n.is_alive(),
                })
                .collect(),
            groups: self.groups.values().map(GroupState::snapshot).collect(),
        }
    }

    /// Restores `state` into this writer, which must hold no node and no
    /// group: all or nothing.
    pub(super) fn restore(&mut self, state: WriterState) -> Result<(), GroupError> {
        if !self.groups.is_empty() || self.nodes.iter().next().is_some() {
            return Err(GroupError::InvalidConfig(
                "a checkpoint restores only into a runtime with no node and no group".into(),
            ));
        }
        let mut restored = Writer::new(
            NodeTable::new(
                state.nodes.iter().map(|n| n.info.clone()),
                self.nodes.hosting(),
            ),
            Arc::clone(&self.registry),
            Arc::clone(&self.factories),
        );
        for node in &state.nodes {
            restored.nodes.set_alive(node.info.id(), node.alive);
        }
        for snapshot in &state.groups {
            let group_id = group_id_of(&snapshot.seed);
            let factory = self
                .factories
                .get(snapshot.kind.as_str())
                .map(|f| Arc::clone(f.value()))
                .ok_or_else(|| GroupError::FactoryNotFound(snapshot.kind.clone()))?;
            let key = restored.next_key;
            let group = GroupRef { key, group_id };
            let result = GroupState::restore(
                group,
                snapshot,
                factory,
                &mut restored.nodes,
                &self.registry,
            );
            let state = match result {
                Ok(state) => state,
                Err(error) => {
                    restored.shutdown();
                    return Err(error);
                }
            };
            restored.next_key += 1;
            restored.seeds.insert(snapshot.seed);
            restored.groups.insert(key, state);
            restored.touched.push(key);
        }
        *self = restored;
        Ok(())
    }
}
