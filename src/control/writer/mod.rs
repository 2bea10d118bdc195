//! The writer: the one thread per runtime that owns all mutable group state.
//!
//! Callers send a [`Command`] over a `crossbeam` channel and block on its
//! reply. The writer applies commands in arrival order, builds each changed
//! group's next roster off to the side and publishes it with one
//! `ArcSwap::store` before replying, so when a call returns, every route that
//! starts after it sees its effect. Commands that arrive together are
//! applied as one batch, each changed group published once (see
//! [`Writer::run`]).

#[cfg(feature = "etcd")]
mod checkpoint;

use std::collections::{BTreeMap, BTreeSet};

use super::command::{Command, GroupHandle, GroupRef, Reply};
use super::factories::Factories;
use super::group_state::{change_span, GroupState};
use super::node_table::{GroupKey, NodeTable};
use super::registry::Registry;
use crate::config::ReplicaGroupConfig;
use crate::error::{GroupError, RuntimeError};
use crate::identity::group_id_of;
use crate::node::NodeInfo;
use crate::sync::channel::Receiver;
use crate::sync::Arc;
use crate::sync::{coarse_now, recv_soon, try_recv_queued};

/// Commands applied before their groups are published and their callers
/// answered, at most.
const MAX_BATCH: usize = 256;

/// A command's answer, sent once its batch is published.
type Answer = Box<dyn FnOnce() + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, value: T) -> Answer {
    Box::new(move || {
        let _ = reply.send(value);
    })
}

/// The writer's state.
pub(crate) struct Writer {
    nodes: NodeTable,
    groups: BTreeMap<GroupKey, GroupState>,
    seeds: BTreeSet<[u8; 32]>,
    next_key: GroupKey,
    registry: Arc<Registry>,
    factories: Arc<Factories>,
    /// Groups the current batch may have changed (with repeats), to publish.
    touched: Vec<GroupKey>,
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
            touched: Vec::new(),
        }
    }

    /// Applies commands until `Shutdown` or until every sender is gone.
    ///
    /// Commands are applied in arrival order, in batches: after the first,
    /// those already queued (up to [`MAX_BATCH`]) are applied too, then every
    /// group they changed is published once, then every caller of the batch
    /// gets its answer. So a call still returns only after its change is
    /// published, and changes submitted at once share the publishing.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        let mut answers: Vec<Answer> = Vec::new();
        'serve: while let Ok(first) = recv_soon(&commands) {
            // Stamps (a replica's healthy-since, its ramp) and fades read
            // the coarse clock: keep it current while changes flow.
            coarse_now();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                if let Command::Shutdown(reply) = command {
                    self.flush();
                    answers.drain(..).for_each(|answer| answer());
                    self.shutdown();
                    let _ = reply.send(());
                    break 'serve;
                }
                answers.push(self.apply(command));
                if answers.len() < MAX_BATCH {
                    next = try_recv_queued(&commands);
                }
            }
            self.flush();
            // A caller that gave up waiting dropped its reply receiver; the
            // change still applies, so a failed reply send is ignored.
            answers.drain(..).for_each(|answer| answer());
        }
        self.shutdown();
    }

    /// Applies one command (not `Shutdown`); its answer, to send once the
    /// batch is published.
    fn apply(&mut self, command: Command) -> Answer {
        match command {
            Command::Spawn(kind, config, reply) => answer(reply, self.spawn(kind, config)),
            Command::Scale(group, n, reply) => answer(reply, self.scale(group, n)),
            Command::Remove(group, reply) => answer(reply, self.remove(group)),
            Command::Groups(reply) => answer(
                reply,
                self.groups.values().map(GroupState::handle).collect(),
            ),
            Command::GroupNodeFailure(group, node, reply) => {
                answer(reply, self.group_node_failure(group, node))
            }
            Command::GroupNodeRecovery(group, node, reply) => {
                answer(reply, self.group_node_recovery(group, node))
            }
            Command::AddNode(node, reply) => answer(reply, self.add_node(node)),
            Command::NodeFailed(node, reply) => answer(reply, self.node_failed(node)),
            Command::NodeRecovered(node, reply) => answer(reply, self.node_recovered(node)),
            Command::Digest(reply) => answer(reply, self.digest()),
            Command::Shutdown(reply) => answer(reply, ()),
            #[cfg(feature = "etcd")]
            Command::Snapshot(reply) => answer(reply, self.snapshot()),
            #[cfg(feature = "etcd")]
            Command::Restore(state, reply) => answer(reply, self.restore(state)),
            #[cfg(test)]
            Command::Crash => panic!("writer crash for a test"),
        }
    }

    /// Publishes every group the batch changed, once each.
    fn flush(&mut self) {
        for key in self.touched.drain(..) {
            if let Some(group) = self.groups.get_mut(&key) {
                group.flush(&self.nodes, &self.registry);
            }
        }
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
        let host = &config.host_config;
        if host
            .hash_balance_factor
            .is_some_and(|f| !(f >= 1.0 && f.is_finite()))
        {
            return Err(GroupError::InvalidConfig(format!(
                "hash_balance_factor {:?} of group {group_id:#010x} (kind `{kind}`): it must be a finite number of at least 1 (1.25 is typical)",
                host.hash_balance_factor
            )));
        }
        if host.max_ejection_percent > 100 {
            return Err(GroupError::InvalidConfig(format!(
                "max_ejection_percent {} of group {group_id:#010x} (kind `{kind}`): a percentage, at most 100",
                host.max_ejection_percent
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
        self.touched.push(key);
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
            touched,
            ..
        } = self;
        let group = groups
            .get_mut(&target.key)
            .ok_or(GroupError::UnknownGroup(target.group_id))?;
        touched.push(target.key);
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
        for (&key, group) in &mut self.groups {
            if group.has_replica_on(node) {
                let _span = group.span();
                replaced += group.fail_node(node, &mut self.nodes, &self.registry).len();
                self.touched.push(key);
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
        for (&key, group) in &mut self.groups {
            if group.has_replica_on(node) {
                let _span = group.span();
                marked += group.recover_node(node, &mut self.nodes, &self.registry);
                self.touched.push(key);
            }
        }
        tracing::info!(node, marked, "node recovered");
        self.heal_stuck();
        Ok(marked)
    }

    /// Re-places replicas stuck on failed nodes, in every group that has
    /// one, after capacity appeared (a node added or recovered).
    fn heal_stuck(&mut self) {
        for (&key, group) in &mut self.groups {
            if group.has_stuck(&self.nodes) {
                let _span = group.span();
                group.heal(&mut self.nodes, &self.registry);
                self.touched.push(key);
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
        self.flush();
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
