//! One group's mutable state, owned by the writer thread, and the changes the
//! writer makes to it. Each change is planned first (placement, factory
//! calls) and committed only when the whole plan succeeded, so a failed
//! command leaves the group, the registry and the published roster exactly
//! as they were.

use std::collections::BTreeSet;

use super::factories::{create, Factory};
use super::node_table::{GroupKey, NodeTable};
use super::placement::Placement;
use super::registry::Registry;
use super::writer::{GroupHandle, GroupRef};
use crate::config::ReplicaGroupConfig;
use crate::daemon::{contain, Daemon, DaemonHostConfig, Replica};
use crate::error::GroupError;
use crate::identity::derive_replica_identity;
use crate::node::CapabilityFilter;
use crate::route::{Listed, Roster};
use crate::strategy::Locale;
use crate::sync::{Arc, ArcSwap};

/// A group as the writer holds it.
pub(super) struct GroupState {
    key: GroupKey,
    group_id: u32,
    kind: Arc<str>,
    config: ReplicaGroupConfig,
    /// `config.host_config`, shared by the group's replicas.
    host_config: Arc<DaemonHostConfig>,
    factory: Arc<Factory>,
    requirements: CapabilityFilter,
    /// Replicas by index; the same list the current roster holds (a change
    /// builds a new one).
    replicas: Arc<[Arc<Replica>]>,
    /// Indices of the replicas routes may not pick.
    unhealthy: BTreeSet<u8>,
    /// Nodes reported failed to this group alone (`on_node_failure`).
    reported_failed: BTreeSet<u64>,
    epoch: u64,
    term: u64,
    roster: Arc<ArcSwap<Roster>>,
}

impl std::fmt::Debug for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupState")
            .field("group_id", &format_args!("{:#010x}", self.group_id))
            .field("kind", &self.kind)
            .field("replicas", &self.replicas.len())
            .finish_non_exhaustive()
    }
}

/// The tracing span of a change to group `group_id` of `kind`.
pub(super) fn change_span(group_id: u32, kind: &str) -> tracing::span::EnteredSpan {
    tracing::info_span!("group_change", group = %format_args!("{group_id:#010x}"), kind).entered()
}

/// Retires `replica`; its daemon is dropped here, on the writer, unless a
/// delivery holds it (that delivery drops it). A panicking `Drop` is
/// contained either way (see `Daemon`): the change it belongs to stands.
fn retire(replica: &Replica) {
    drop(replica.retire());
}

impl GroupState {
    /// Creates, places and registers every replica of a new group, then
    /// publishes its first roster. On error nothing is registered and the
    /// node table is unchanged.
    pub(super) fn spawn(
        group: GroupRef,
        kind: Arc<str>,
        config: ReplicaGroupConfig,
        factory: Arc<Factory>,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Result<GroupState, GroupError> {
        let GroupRef { key, group_id } = group;
        // The first daemon tells the kind's requirements; every process of a
        // cluster creates it, so all place alike. It becomes replica 0's
        // daemon when that replica is hosted here.
        let mut first = create(&*factory, &kind, group_id)?;
        let requirements = contain(|| first.get().requirements()).map_err(|message| {
            GroupError::DaemonPanicked {
                kind: kind.to_string(),
                call: "requirements()",
                message,
            }
        })?;
        let count = config.replica_count;
        let mut state = GroupState {
            key,
            group_id,
            kind,
            host_config: Arc::new(config.host_config.clone()),
            config,
            factory,
            requirements,
            replicas: Arc::default(),
            unhealthy: BTreeSet::new(),
            reported_failed: BTreeSet::new(),
            epoch: 0,
            term: 0,
            roster: Arc::new(ArcSwap::from_pointee(Roster::closed(0, 0))),
        };
        let grown = state.plan_growth(count, Some(first), nodes, registry)?;
        state.commit_growth(grown, nodes, registry);
        state.publish(nodes);
        Ok(state)
    }

    pub(super) fn group_id(&self) -> u32 {
        self.group_id
    }

    /// The tracing span of a change to this group: every event the change
    /// logs names the group.
    pub(super) fn span(&self) -> tracing::span::EnteredSpan {
        change_span(self.group_id, &self.kind)
    }

    pub(super) fn kind(&self) -> &Arc<str> {
        &self.kind
    }

    pub(super) fn seed(&self) -> &[u8; 32] {
        &self.config.group_seed
    }

    /// What a handle to this group holds.
    pub(super) fn handle(&self) -> GroupHandle {
        GroupHandle {
            group: GroupRef {
                key: self.key,
                group_id: self.group_id,
            },
            kind: Arc::clone(&self.kind),
            strategy: self.config.lb_strategy,
            roster: Arc::clone(&self.roster),
        }
    }

    pub(super) fn len(&self) -> u8 {
        self.replicas.len() as u8
    }

    /// Replicas by index, with whether each is healthy.
    pub(super) fn replicas(&self) -> impl Iterator<Item = (&Arc<Replica>, bool)> {
        self.replicas
            .iter()
            .map(|r| (r, !self.unhealthy.contains(&r.index())))
    }

    /// Whether a replica of this group sits on `node`.
    pub(super) fn has_replica_on(&self, node: u64) -> bool {
        self.replicas.iter().any(|r| r.node_id() == node)
    }

    /// Records whether `node` was reported failed to this group alone.
    pub(super) fn set_reported_failed(&mut self, node: u64, failed: bool) {
        if failed {
            self.reported_failed.insert(node);
        } else {
            self.reported_failed.remove(&node);
        }
    }

    /// Plans replicas `len..count`: daemons created, nodes chosen, identities
    /// derived; nothing registered yet.
    fn plan_growth(
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
            let identity = derive_replica_identity(self.seed(), index);
            if registry.contains(identity.origin_hash()) {
                return Err(GroupError::RegistryFailed(format!(
                    "origin hash {:#018x} of replica {index} of group {:#010x} is already registered",
                    identity.origin_hash(),
                    self.group_id
                )));
            }
            let daemon = match (nodes.hosts_here(node), first.take()) {
                (false, _) => None,
                (true, Some(d)) => Some(d),
                (true, None) => Some(create(&*self.factory, &self.kind, self.group_id)?),
            };
            let host_config = Arc::clone(&self.host_config);
            grown.push(Arc::new(Replica::new(&identity, node, daemon, host_config)));
        }
        Ok(grown)
    }

    fn commit_growth(
        &mut self,
        grown: Vec<Arc<Replica>>,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) {
        let mut replicas = self.replicas.to_vec();
        for replica in grown {
            registry.put(&replica);
            nodes.attach(replica.node_id());
            replicas.push(replica);
        }
        self.replicas = replicas.into();
    }

    /// Grows or shrinks to `count` replicas, and re-places replicas stuck on
    /// failed nodes on the way. All or nothing: when growth cannot be placed
    /// or created, nothing changes. Returns whether anything changed.
    pub(super) fn scale_to(
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
            self.publish(nodes);
            return Ok(true);
        }
        // Highest indices leave first; replicas stuck on failed nodes may
        // then move to the nodes that frees. The node table forgets the
        // removed replicas before healing (a healed replica may move onto a
        // freed node, and a later detach would drop the group from that
        // node's index: tests/regression_shrink_heals_onto_freed_node.rs).
        // Publish before unregistering, so no route can pick a replica that
        // delivery no longer knows.
        let mut replicas = self.replicas.to_vec();
        let removed = replicas.split_off(count as usize);
        self.replicas = replicas.into();
        self.unhealthy.retain(|&i| i < count);
        for replica in &removed {
            nodes.detach(replica.node_id());
        }
        let healed = !self.heal(nodes, registry).is_empty();
        if removed.is_empty() {
            if healed {
                self.publish(nodes);
            }
            return Ok(healed);
        }
        self.publish(nodes);
        for replica in &removed {
            registry.remove(replica.origin_hash());
            retire(replica);
        }
        Ok(true)
    }

    /// Marks the replicas on `node` unhealthy and re-places each on another
    /// node, keeping its identity. Returns the indices re-placed; replicas
    /// with no node left stay registered and unhealthy until a recovery or
    /// scale heals them. Publishes when anything changed.
    pub(super) fn fail_node(
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
            self.publish(nodes);
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
    pub(super) fn has_stuck(&self, nodes: &NodeTable) -> bool {
        self.replicas
            .iter()
            .any(|r| self.unhealthy.contains(&r.index()) && self.node_down(nodes, r.node_id()))
    }

    /// Re-places every replica whose node is down onto a free node, swapping
    /// its registry entry in one step. Returns the indices moved.
    pub(super) fn heal(&mut self, nodes: &mut NodeTable, registry: &Registry) -> Vec<u8> {
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
            let replica = Arc::new(old.moved_to(node, daemon, Arc::clone(&self.host_config)));
            registry.put(&replica);
            retire(&old);
            nodes.detach(old.node_id());
            nodes.attach(node);
            replicas[i] = replica;
            self.unhealthy.remove(&(i as u8));
            self.term += 1;
            moved.push(i as u8);
            tracing::info!(
                index = i,
                from_node = old.node_id(),
                to_node = node,
                "replica re-placed"
            );
        }
        if !moved.is_empty() {
            self.replicas = replicas.into();
        }
        for replica in self.replicas.iter() {
            if self.node_down(nodes, replica.node_id()) {
                self.unhealthy.insert(replica.index());
            }
        }
        moved
    }

    /// Re-marks as healthy the replicas on `node` that are still the
    /// registered ones, when the node is up for this group. Then re-places
    /// replicas stuck elsewhere, which may now fit. Returns the number
    /// re-marked healthy; publishes when anything changed.
    pub(super) fn recover_node(
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
                    marked += 1;
                }
            }
        }
        let moved = self.heal(nodes, registry);
        if marked > 0 || !moved.is_empty() {
            self.publish(nodes);
            tracing::info!(node, marked, "group recovered node");
        }
        marked
    }

    /// Publishes a new roster built from the replicas.
    pub(super) fn publish(&mut self, nodes: &NodeTable) {
        self.epoch += 1;
        let unknown = Locale::default();
        let listed: Vec<Listed<'_>> = self
            .replicas
            .iter()
            .map(|r| {
                let locale = nodes.get(r.node_id()).map_or(&unknown, |n| n.locale());
                (!self.unhealthy.contains(&r.index()), locale)
            })
            .collect();
        let strategy = self.config.lb_strategy;
        let replicas = Arc::clone(&self.replicas);
        let roster = Roster::new(self.epoch, self.term, strategy, replicas, &listed);
        self.roster.store(Arc::new(roster));
    }

    /// Publishes the closed roster (the runtime shuts down), unregisters and
    /// retires every replica.
    pub(super) fn close(&mut self, nodes: &mut NodeTable, registry: &Registry) {
        self.epoch += 1;
        self.end(Roster::closed(self.epoch, self.term), nodes, registry);
    }

    /// Publishes the removed roster, unregisters and retires every replica.
    pub(super) fn remove(&mut self, nodes: &mut NodeTable, registry: &Registry) {
        self.epoch += 1;
        self.end(Roster::removed(self.epoch, self.term), nodes, registry);
    }

    /// Publishes `last` (no replicas), then unregisters and retires every
    /// replica: once the call returns, no route picks one and no delivery
    /// finds one.
    fn end(&mut self, last: Roster, nodes: &mut NodeTable, registry: &Registry) {
        self.roster.store(Arc::new(last));
        self.unhealthy.clear();
        for replica in std::mem::take(&mut self.replicas).iter() {
            registry.remove(replica.origin_hash());
            retire(replica);
            nodes.detach(replica.node_id());
        }
    }
}
