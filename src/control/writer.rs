//! The writer: the one thread per runtime that owns all mutable group state.
//!
//! Callers send a [`Command`] over a `crossbeam` channel and block on its
//! reply. The writer applies commands one at a time, in arrival order, builds
//! each next roster off to the side and publishes it with one `ArcSwap::store`
//! before replying, so when a call returns, every route that starts after it
//! sees its effect.

use std::collections::{BTreeMap, BTreeSet};

use super::factories::Factories;
use super::group_state::{change_span, GroupState};
use super::node_table::{GroupKey, NodeTable};
use super::registry::Registry;
use crate::config::ReplicaGroupConfig;
use crate::error::{GroupError, RuntimeError};
use crate::identity::group_id_of;
use crate::node::NodeInfo;
use crate::route::Roster;
use crate::strategy::Strategy;
use crate::sync::channel::{Receiver, Sender};
use crate::sync::{Arc, ArcSwap};

/// Where a command's answer goes.
pub(crate) type Reply<T> = Sender<T>;

/// A group as a command names it: the writer's key, and the public id for
/// the errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupRef {
    pub(crate) key: GroupKey,
    pub(crate) group_id: u32,
}

/// What a handle to a group holds: how commands name it, its pinned kind
/// and strategy, and where its rosters are published.
#[derive(Debug, Clone)]
pub(crate) struct GroupHandle {
    pub(crate) group: GroupRef,
    pub(crate) kind: Arc<str>,
    pub(crate) strategy: Strategy,
    pub(crate) roster: Arc<ArcSwap<Roster>>,
}

/// A change for the writer to apply.
#[derive(Debug)]
pub(crate) enum Command {
    Spawn(
        Arc<str>,
        ReplicaGroupConfig,
        Reply<Result<GroupHandle, GroupError>>,
    ),
    Scale(GroupRef, u8, Reply<Result<(), GroupError>>),
    Remove(GroupRef, Reply<Result<(), GroupError>>),
    /// Every live group, in spawn order.
    Groups(Reply<Vec<GroupHandle>>),
    GroupNodeFailure(GroupRef, u64, Reply<Result<Vec<u8>, GroupError>>),
    GroupNodeRecovery(GroupRef, u64, Reply<Result<(), GroupError>>),
    AddNode(NodeInfo, Reply<Result<(), RuntimeError>>),
    NodeFailed(u64, Reply<Result<usize, RuntimeError>>),
    NodeRecovered(u64, Reply<Result<usize, RuntimeError>>),
    Digest(Reply<u64>),
    Shutdown(Reply<()>),
    /// Makes the writer panic, as a bug of its own would.
    #[cfg(test)]
    Crash,
}

/// The writer's state.
pub(crate) struct Writer {
    nodes: NodeTable,
    groups: BTreeMap<GroupKey, GroupState>,
    seeds: BTreeSet<[u8; 32]>,
    next_key: GroupKey,
    registry: Arc<Registry>,
    factories: Arc<Factories>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(
        nodes: NodeTable,
        registry: Arc<Registry>,
        factories: Arc<Factories>,
    ) -> Self {
        Writer {
            nodes,
            groups: BTreeMap::new(),
            seeds: BTreeSet::new(),
            next_key: 0,
            registry,
            factories,
        }
    }

    /// Applies commands until `Shutdown` or until every sender is gone.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            // A caller that gave up waiting dropped its reply receiver;
            // the change still applies, so a failed reply send is ignored.
            match command {
                Command::Spawn(kind, config, reply) => {
                    let _ = reply.send(self.spawn(kind, config));
                }
                Command::Scale(group, n, reply) => {
                    let _ = reply.send(self.scale(group, n));
                }
                Command::Remove(group, reply) => {
                    let _ = reply.send(self.remove(group));
                }
                Command::Groups(reply) => {
                    let _ = reply.send(self.groups.values().map(GroupState::handle).collect());
                }
                Command::GroupNodeFailure(group, node, reply) => {
                    let _ = reply.send(self.group_node_failure(group, node));
                }
                Command::GroupNodeRecovery(group, node, reply) => {
                    let _ = reply.send(self.group_node_recovery(group, node));
                }
                Command::AddNode(node, reply) => {
                    let _ = reply.send(self.add_node(node));
                }
                Command::NodeFailed(node, reply) => {
                    let _ = reply.send(self.node_failed(node));
                }
                Command::NodeRecovered(node, reply) => {
                    let _ = reply.send(self.node_recovered(node));
                }
                Command::Digest(reply) => {
                    let _ = reply.send(self.digest());
                }
                Command::Shutdown(reply) => {
                    self.shutdown();
                    let _ = reply.send(());
                    break;
                }
                #[cfg(test)]
                Command::Crash => panic!("writer crash for a test"),
            }
        }
        self.shutdown();
    }

    fn spawn(
        &mut self,
        kind: Arc<str>,
        config: ReplicaGroupConfig,
    ) -> Result<GroupHandle, GroupError> {
        let group_id = group_id_of(&config.group_seed);
        if config.replica_count == 0 {
            return Err(GroupError::InvalidConfig(format!(
                "replica_count must be at least 1 (group {group_id:#010x}, kind `{kind}`)"
            )));
        }
        let factory = self
            .factories
            .get(&*kind)
            .map(|f| Arc::clone(f.value()))
            .ok_or_else(|| GroupError::FactoryNotFound(kind.to_string()))?;
        if self.seeds.contains(&config.group_seed) {
            return Err(GroupError::InvalidConfig(format!(
                "group seed already in use by a live group {group_id:#010x}: a seed determines every replica identity, so two groups cannot share one"
            )));
        }
        let key = self.next_key;
        let (count, strategy) = (config.replica_count, config.lb_strategy);
        let group = GroupRef { key, group_id };
        let _span = change_span(group_id, &kind);
        let state = GroupState::spawn(
            group,
            kind,
            config,
            factory,
            &mut self.nodes,
            &self.registry,
        )?;
        self.next_key += 1;
        self.seeds.insert(*state.seed());
        let handle = state.handle();
        tracing::info!(replicas = count, ?strategy, "group spawned");
        self.groups.insert(key, state);
        Ok(handle)
    }

    fn remove(&mut self, target: GroupRef) -> Result<(), GroupError> {
        let (group, nodes, registry) = self.group(target)?;
        let _span = group.span();
        group.remove(nodes, registry);
        let state = self.groups.remove(&target.key).expect("found above");
        self.seeds.remove(state.seed());
        self.registry.shrink_if_sparse();
        crate::route::cache::note_removal();
        tracing::info!("group removed");
        Ok(())
    }

    /// The group a command names and what a change to it needs;
    /// `UnknownGroup` when the writer has no such group.
    fn group(
        &mut self,
        target: GroupRef,
    ) -> Result<(&mut GroupState, &mut NodeTable, &Registry), GroupError> {
        let Writer {
            groups,
            nodes,
            registry,
            ..
        } = self;
        let group = groups
            .get_mut(&target.key)
            .ok_or(GroupError::UnknownGroup(target.group_id))?;
        Ok((group, nodes, registry))
    }

    fn scale(&mut self, target: GroupRef, n: u8) -> Result<(), GroupError> {
        let (group, nodes, registry) = self.group(target)?;
        let _span = group.span();
        if n == 0 {
            return Err(GroupError::InvalidConfig(format!(
                "scale_to(0) for group {:#010x} (kind `{}`): a group keeps at least 1 replica",
                group.group_id(),
                group.kind()
            )));
        }
        let from = group.len();
        if group.scale_to(n, nodes, registry)? {
            tracing::info!(from, to = n, "group scaled");
        }
        Ok(())
    }

    fn group_node_failure(&mut self, target: GroupRef, node: u64) -> Result<Vec<u8>, GroupError> {
        let (group, nodes, registry) = self.group(target)?;
        let _span = group.span();
        if nodes.get(node).is_some() {
            group.set_reported_failed(node, true);
        }
        Ok(group.fail_node(node, nodes, registry))
    }

    fn group_node_recovery(&mut self, target: GroupRef, node: u64) -> Result<(), GroupError> {
        let (group, nodes, registry) = self.group(target)?;
        let _span = group.span();
        group.set_reported_failed(node, false);
        group.recover_node(node, nodes, registry);
        Ok(())
    }

    fn add_node(&mut self, node: NodeInfo) -> Result<(), RuntimeError> {
        let id = node.id();
        if !self.nodes.add(node) {
            return Err(RuntimeError::DuplicateNode(id));
        }
        tracing::info!(node = id, "node added");
        self.heal_stuck();
        Ok(())
    }

    fn node_failed(&mut self, node: u64) -> Result<usize, RuntimeError> {
        if !self.nodes.set_alive(node, false) {
            return Err(RuntimeError::UnknownNode(node));
        }
        let mut replaced = 0;
        for group in self.groups.values_mut() {
            if group.has_replica_on(node) {
                let _span = group.span();
                replaced += group.fail_node(node, &mut self.nodes, &self.registry).len();
            }
        }
        tracing::info!(node, replaced, "node failed");
        Ok(replaced)
    }

    fn node_recovered(&mut self, node: u64) -> Result<usize, RuntimeError> {
        if !self.nodes.set_alive(node, true) {
            return Err(RuntimeError::UnknownNode(node));
        }
        for group in self.groups.values_mut() {
            group.set_reported_failed(node, false);
        }
        let mut marked = 0;
        for group in self.groups.values_mut() {
            if group.has_replica_on(node) {
                let _span = group.span();
                marked += group.recover_node(node, &mut self.nodes, &self.registry);
            }
        }
        tracing::info!(node, marked, "node recovered");
        self.heal_stuck();
        Ok(marked)
    }

    /// Re-places replicas stuck on failed nodes, in every group that has
    /// one, after capacity appeared (a node added or recovered).
    fn heal_stuck(&mut self) {
        for group in self.groups.values_mut() {
            if group.has_stuck(&self.nodes) {
                let _span = group.span();
                if !group.heal(&mut self.nodes, &self.registry).is_empty() {
                    group.publish(&self.nodes);
                }
            }
        }
    }

    fn digest(&self) -> u64 {
        let mut hasher = blake3::Hasher::new_derive_key("replica-router v1 roster digest");
        for group in self.groups.values() {
            hasher.update(&group.group_id().to_le_bytes());
            hasher.update(&[group.len()]);
            for (replica, healthy) in group.replicas() {
                hasher.update(&[replica.index(), u8::from(healthy)]);
                hasher.update(&replica.origin_hash().to_le_bytes());
                hasher.update(&replica.node_id().to_le_bytes());
            }
        }
        let digest = hasher.finalize();
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    fn shutdown(&mut self) {
        for group in self.groups.values_mut() {
            let _span = group.span();
            group.close(&mut self.nodes, &self.registry);
        }
        if !self.groups.is_empty() {
            tracing::info!(groups = self.groups.len(), "runtime shut down");
        }
        self.groups.clear();
        self.seeds.clear();
    }
}
