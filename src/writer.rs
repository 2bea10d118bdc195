//! The writer: the one thread per runtime that owns all mutable group state.
//!
//! Callers send a [`Command`] over a `crossbeam` channel and block on its
//! reply. The writer applies commands one at a time, in arrival order, builds
//! each next roster off to the side and publishes it with one `ArcSwap::store`
//! before replying, so when a call returns, every route that starts after it
//! sees its effect.

use std::collections::{BTreeMap, BTreeSet};

use crate::daemon::DaemonHostConfig;
use crate::error::{GroupError, RuntimeError};
use crate::group_state::{Factory, GroupState, SpawnPlan};
use crate::identity::group_id_of;
use crate::node::NodeInfo;
use crate::node_table::{GroupKey, NodeTable};
use crate::registry::DaemonRegistry;
use crate::roster::Roster;
use crate::strategy::Strategy;
use crate::sync::channel::{Receiver, Sender};
use crate::sync::{Arc, Map, Publisher};

/// Where a command's answer goes.
pub(crate) type Reply<T> = Sender<T>;

/// Kind name → factory. Shared with the runtime, which registers into it.
pub(crate) type Factories = Map<String, Arc<Factory>>;

/// A group's settings, as the writer receives them.
#[derive(Debug)]
pub(crate) struct GroupSpec {
    pub(crate) kind: String,
    pub(crate) seed: [u8; 32],
    pub(crate) count: u8,
    pub(crate) strategy: Strategy,
    pub(crate) host_config: DaemonHostConfig,
}

/// What a successful spawn hands back to the caller.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) key: GroupKey,
    pub(crate) group_id: u32,
    pub(crate) roster: Arc<Publisher<Roster>>,
}

/// A change for the writer to apply.
#[derive(Debug)]
pub(crate) enum Command {
    Spawn(GroupSpec, Reply<Result<Spawned, GroupError>>),
    Scale(GroupKey, u8, Reply<Result<(), GroupError>>),
    GroupNodeFailure(GroupKey, u64, Reply<Result<Vec<u8>, GroupError>>),
    GroupNodeRecovery(GroupKey, u64, Reply<()>),
    AddNode(NodeInfo, Reply<Result<(), RuntimeError>>),
    NodeFailed(u64, Reply<Result<usize, RuntimeError>>),
    NodeRecovered(u64, Reply<Result<usize, RuntimeError>>),
    Digest(Reply<u64>),
    Shutdown(Reply<()>),
}

/// The writer's state.
pub(crate) struct Writer {
    nodes: NodeTable,
    groups: BTreeMap<GroupKey, GroupState>,
    seeds: BTreeSet<[u8; 32]>,
    next_key: GroupKey,
    registry: Arc<DaemonRegistry>,
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
        registry: Arc<DaemonRegistry>,
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
                Command::Spawn(spec, reply) => {
                    let _ = reply.send(self.spawn(spec));
                }
                Command::Scale(key, n, reply) => {
                    let _ = reply.send(self.scale(key, n));
                }
                Command::GroupNodeFailure(key, node, reply) => {
                    let _ = reply.send(self.group_node_failure(key, node));
                }
                Command::GroupNodeRecovery(key, node, reply) => {
                    self.group_node_recovery(key, node);
                    let _ = reply.send(());
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
            }
        }
        self.shutdown();
    }

    fn spawn(&mut self, spec: GroupSpec) -> Result<Spawned, GroupError> {
        let group_id = group_id_of(&spec.seed);
        let kind = &spec.kind;
        if spec.count == 0 {
            return Err(GroupError::InvalidConfig(format!(
                "replica_count must be at least 1 (group {group_id:#010x}, kind `{kind}`)"
            )));
        }
        let factory = self
            .factories
            .get_cloned(kind.as_str())
            .ok_or_else(|| GroupError::FactoryNotFound(kind.clone()))?;
        if self.seeds.contains(&spec.seed) {
            return Err(GroupError::InvalidConfig(format!(
                "group seed already in use by a live group {group_id:#010x}: a seed determines every replica identity, so two groups cannot share one"
            )));
        }
        let key = self.next_key;
        let plan = SpawnPlan {
            key,
            kind,
            factory,
            seed: spec.seed,
            count: spec.count,
            strategy: spec.strategy,
            host_config: spec.host_config,
        };
        let state = GroupState::spawn(plan, group_id, &mut self.nodes, &self.registry)?;
        self.next_key += 1;
        self.seeds.insert(spec.seed);
        let spawned = Spawned {
            key,
            group_id,
            roster: Arc::clone(&state.roster),
        };
        tracing::info!(group_id, kind = %kind, replicas = spec.count, strategy = ?spec.strategy, "group spawned");
        self.groups.insert(key, state);
        Ok(spawned)
    }

    fn scale(&mut self, key: GroupKey, n: u8) -> Result<(), GroupError> {
        let registry = Arc::clone(&self.registry);
        let nodes = &mut self.nodes;
        let group = self.groups.get_mut(&key).ok_or(GroupError::ShuttingDown)?;
        if n == 0 {
            return Err(GroupError::InvalidConfig(format!(
                "scale_to(0) for group {:#010x} (kind `{}`): a group keeps at least 1 replica",
                group.group_id, group.kind
            )));
        }
        let from = group.len();
        if group.scale_to(n, nodes, &registry)? {
            tracing::info!(group_id = group.group_id, kind = %group.kind, from, to = n, "group scaled");
        }
        Ok(())
    }

    fn group_node_failure(&mut self, key: GroupKey, node: u64) -> Result<Vec<u8>, GroupError> {
        let known = self.nodes.get(node).is_some();
        let registry = Arc::clone(&self.registry);
        let nodes = &mut self.nodes;
        let group = self.groups.get_mut(&key).ok_or(GroupError::ShuttingDown)?;
        if known {
            group.reported_failed.insert(node);
        }
        Ok(group.fail_node(node, nodes, &registry))
    }

    fn group_node_recovery(&mut self, key: GroupKey, node: u64) {
        let registry = Arc::clone(&self.registry);
        let nodes = &mut self.nodes;
        // Handles exist only for spawned groups, and groups leave the map only
        // at shutdown.
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        group.reported_failed.remove(&node);
        group.recover_node(node, nodes, &registry);
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
        let entry = self
            .nodes
            .get_mut(node)
            .ok_or(RuntimeError::UnknownNode(node))?;
        entry.alive = false;
        let mut replaced = 0;
        for key in self.nodes.groups_on(node) {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            replaced += group.fail_node(node, &mut self.nodes, &self.registry).len();
        }
        tracing::info!(node, replaced, "node failed");
        Ok(replaced)
    }

    fn node_recovered(&mut self, node: u64) -> Result<usize, RuntimeError> {
        let entry = self
            .nodes
            .get_mut(node)
            .ok_or(RuntimeError::UnknownNode(node))?;
        entry.alive = true;
        let mut marked = 0;
        for group in self.groups.values_mut() {
            group.reported_failed.remove(&node);
        }
        for key in self.nodes.groups_on(node) {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            marked += group.recover_node(node, &mut self.nodes, &self.registry);
        }
        tracing::info!(node, marked, "node recovered");
        self.heal_stuck();
        Ok(marked)
    }

    /// Re-places members stuck on failed nodes, in every group that has one,
    /// after capacity appeared (a node added or recovered).
    fn heal_stuck(&mut self) {
        for group in self.groups.values_mut() {
            if group.has_stuck(&self.nodes)
                && !group.heal(&mut self.nodes, &self.registry).is_empty()
            {
                group.publish(&self.nodes);
            }
        }
    }

    fn digest(&self) -> u64 {
        let mut hasher = blake3::Hasher::new_derive_key("replica-router v1 roster digest");
        for group in self.groups.values() {
            hasher.update(&group.group_id.to_le_bytes());
            hasher.update(&[group.len()]);
            for (i, slot) in group.slots.iter().enumerate() {
                hasher.update(&[i as u8, u8::from(slot.healthy)]);
                hasher.update(&slot.identity.origin_hash().to_le_bytes());
                hasher.update(&slot.node.to_le_bytes());
            }
        }
        let digest = hasher.finalize();
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    fn shutdown(&mut self) {
        for group in self.groups.values_mut() {
            group.close(&mut self.nodes, &self.registry);
        }
        if !self.groups.is_empty() {
            tracing::info!(groups = self.groups.len(), "runtime shut down");
        }
        self.groups.clear();
        self.seeds.clear();
    }
}
