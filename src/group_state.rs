//! One group's mutable state, owned by the writer thread, and the changes the
//! writer makes to it. Each change is planned first (placement, factory
//! calls) and committed only when the whole plan succeeded, so a failed
//! command leaves the group, the registry and the published roster exactly
//! as they were.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::daemon::{DaemonHost, DaemonHostConfig, MeshDaemon};
use crate::error::{panic_message, GroupError};
use crate::identity::{derive_replica_identity, ReplicaIdentity};
use crate::node::CapabilityFilter;
use crate::node_table::{GroupKey, NodeTable};
use crate::placement::Placement;
use crate::registry::DaemonRegistry;
use crate::roster::{label_hash, Member, Roster};
use crate::strategy::maglev::Maglev;
use crate::strategy::Strategy;
use crate::sync::{Arc, Publisher};

/// A daemon factory, as registered with the runtime.
pub(crate) type Factory = dyn Fn() -> Box<dyn MeshDaemon> + Send + Sync;

/// One replica slot of a group.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) identity: ReplicaIdentity,
    pub(crate) node: u64,
    pub(crate) healthy: bool,
    pub(crate) host: Arc<DaemonHost>,
}

/// A group as the writer holds it.
pub(crate) struct GroupState {
    pub(crate) key: GroupKey,
    pub(crate) group_id: u32,
    pub(crate) kind: Arc<str>,
    pub(crate) seed: [u8; 32],
    factory: Arc<Factory>,
    strategy: Strategy,
    host_config: DaemonHostConfig,
    requirements: CapabilityFilter,
    /// Replica slots by index.
    pub(crate) slots: Vec<Slot>,
    /// Nodes reported failed to this group alone (`on_node_failure`).
    pub(crate) reported_failed: BTreeSet<u64>,
    epoch: u64,
    term: u64,
    /// The Maglev table the last publish displaced (see `publish`).
    spare_table: Option<Arc<Maglev>>,
    pub(crate) roster: Arc<Publisher<Roster>>,
}

impl std::fmt::Debug for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupState")
            .field("group_id", &self.group_id)
            .field("kind", &self.kind)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// What the writer needs to spawn a group.
pub(crate) struct SpawnPlan<'a> {
    pub(crate) key: GroupKey,
    pub(crate) kind: &'a str,
    pub(crate) factory: Arc<Factory>,
    pub(crate) seed: [u8; 32],
    pub(crate) count: u8,
    pub(crate) strategy: Strategy,
    pub(crate) host_config: DaemonHostConfig,
}

/// Calls the factory, turning a panic into an error that names the kind.
fn create(factory: &Factory, kind: &str, group_id: u32) -> Result<Box<dyn MeshDaemon>, GroupError> {
    catch_unwind(AssertUnwindSafe(factory)).map_err(|payload| {
        GroupError::FactoryFailed(format!(
            "factory for kind `{kind}` panicked while creating a replica of group {group_id:#010x}: {}",
            panic_message(payload.as_ref())
        ))
    })
}

impl GroupState {
    /// Creates, places and registers every replica, then publishes the first
    /// roster. On error nothing is registered and the node table is unchanged.
    pub(crate) fn spawn(
        plan: SpawnPlan<'_>,
        group_id: u32,
        nodes: &mut NodeTable,
        registry: &DaemonRegistry,
    ) -> Result<GroupState, GroupError> {
        // The first daemon tells the kind's requirements; every process of a
        // cluster creates it, so all place alike. It becomes replica 0's
        // daemon when that replica is hosted here.
        let first = create(&*plan.factory, plan.kind, group_id)?;
        let requirements = first.requirements();
        let mut state = GroupState {
            key: plan.key,
            group_id,
            kind: plan.kind.into(),
            seed: plan.seed,
            factory: plan.factory,
            strategy: plan.strategy,
            host_config: plan.host_config,
            requirements,
            slots: Vec::new(),
            reported_failed: BTreeSet::new(),
            epoch: 0,
            term: 0,
            spare_table: None,
            roster: Arc::new(Publisher::new(Roster::closed(0, 0))),
        };
        let grown = state.plan_growth(plan.count, Some(first), nodes, registry)?;
        state.commit_growth(grown, nodes, registry);
        state.publish(nodes);
        Ok(state)
    }

    pub(crate) fn len(&self) -> u8 {
        self.slots.len() as u8
    }

    /// Plans slots `len..count`: daemons created, nodes chosen, identities
    /// derived; nothing registered yet.
    fn plan_growth(
        &self,
        count: u8,
        mut first: Option<Box<dyn MeshDaemon>>,
        nodes: &NodeTable,
        registry: &DaemonRegistry,
    ) -> Result<Vec<Slot>, GroupError> {
        let mut placement = Placement::new(
            nodes,
            &self.requirements,
            self.slots.iter().map(|s| s.node),
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
            let identity = derive_replica_identity(&self.seed, index);
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
            grown.push(self.slot(identity, node, daemon));
        }
        Ok(grown)
    }

    fn slot(
        &self,
        identity: ReplicaIdentity,
        node: u64,
        daemon: Option<Box<dyn MeshDaemon>>,
    ) -> Slot {
        let host = DaemonHost::new(
            identity.origin_hash(),
            node,
            daemon,
            self.host_config.clone(),
        );
        Slot {
            identity,
            node,
            healthy: true,
            host: Arc::new(host),
        }
    }

    fn commit_growth(
        &mut self,
        grown: Vec<Slot>,
        nodes: &mut NodeTable,
        registry: &DaemonRegistry,
    ) {
        for slot in grown {
            registry.put(slot.identity.origin_hash(), Arc::clone(&slot.host));
            nodes.attach(slot.node, self.key);
            self.slots.push(slot);
        }
    }

    /// Grows or shrinks to `count` replicas, and re-places members stuck on
    /// failed nodes on the way. All or nothing: when growth cannot be placed
    /// or created, nothing changes. Returns whether anything changed.
    pub(crate) fn scale_to(
        &mut self,
        count: u8,
        nodes: &mut NodeTable,
        registry: &DaemonRegistry,
    ) -> Result<bool, GroupError> {
        let current = self.len();
        if count > current {
            let grown = self.plan_growth(count, None, nodes, registry)?;
            // Commit growth before healing, so healing sees the new members'
            // nodes as taken.
            self.commit_growth(grown, nodes, registry);
            self.heal(nodes, registry);
            self.publish(nodes);
            return Ok(true);
        }
        // Highest indices leave first; members stuck on failed nodes may
        // then move to the nodes that frees. The node table forgets the
        // removed members before healing (a healed member may move onto a
        // freed node, and a later detach would drop the group from that
        // node's index: tests/regression_shrink_heals_onto_freed_node.rs).
        // Publish before unregistering, so no route can pick a member that
        // delivery no longer knows.
        let removed = self.slots.split_off(count as usize);
        for slot in &removed {
            nodes.detach(slot.node, self.key);
        }
        let healed = !self.heal(nodes, registry).is_empty();
        if removed.is_empty() {
            if healed {
                self.publish(nodes);
            }
            return Ok(healed);
        }
        self.publish(nodes);
        for slot in &removed {
            registry.remove(slot.identity.origin_hash());
        }
        Ok(true)
    }

    /// Marks the members on `node` unhealthy and re-places each on another
    /// node, keeping its identity. Returns the indices re-placed; members with
    /// no node left stay registered and unhealthy until a recovery or scale
    /// heals them. Publishes when anything changed.
    pub(crate) fn fail_node(
        &mut self,
        node: u64,
        nodes: &mut NodeTable,
        registry: &DaemonRegistry,
    ) -> Vec<u8> {
        let mut changed = false;
        for slot in self.slots.iter_mut().filter(|s| s.node == node) {
            changed |= slot.healthy;
            slot.healthy = false;
        }
        let replaced = self.heal(nodes, registry);
        if changed || !replaced.is_empty() {
            self.publish(nodes);
            tracing::info!(group_id = self.group_id, kind = %self.kind, node, ?replaced, "group failed over node");
        }
        replaced
    }

    /// Whether a slot's node cannot serve it: failed runtime-wide or reported
    /// failed to this group.
    fn node_down(&self, nodes: &NodeTable, node: u64) -> bool {
        !nodes.is_alive(node) || self.reported_failed.contains(&node)
    }

    /// Whether some member waits for a node.
    pub(crate) fn has_stuck(&self, nodes: &NodeTable) -> bool {
        self.slots
            .iter()
            .any(|s| !s.healthy && self.node_down(nodes, s.node))
    }

    /// Re-places every member whose node is down onto a free node, swapping
    /// its registry entry in one step. Returns the indices moved.
    pub(crate) fn heal(&mut self, nodes: &mut NodeTable, registry: &DaemonRegistry) -> Vec<u8> {
        let stuck: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.node_down(nodes, self.slots[i].node))
            .collect();
        if stuck.is_empty() {
            return Vec::new();
        }
        let mut moves = Vec::new();
        {
            // Zone use counts only the members that stay; the nodes of the
            // members being moved are excluded, not counted as occupied.
            let staying = (0..self.slots.len()).filter(|i| !stuck.contains(i));
            let mut placement = Placement::new(
                nodes,
                &self.requirements,
                staying.map(|i| self.slots[i].node),
                stuck
                    .iter()
                    .map(|&i| self.slots[i].node)
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
                        tracing::warn!(group_id = self.group_id, kind = %self.kind, %error, "replacement replica not created");
                        break;
                    }
                }
            }
        }
        let mut moved = Vec::new();
        for (i, node, daemon) in moves {
            let identity = self.slots[i].identity.clone();
            let old_node = self.slots[i].node;
            let slot = self.slot(identity, node, daemon);
            registry.put(slot.identity.origin_hash(), Arc::clone(&slot.host));
            nodes.detach(old_node, self.key);
            nodes.attach(node, self.key);
            self.slots[i] = slot;
            self.term += 1;
            moved.push(i as u8);
            tracing::info!(group_id = self.group_id, kind = %self.kind, index = i, from_node = old_node, to_node = node, "replica re-placed");
        }
        for slot in &mut self.slots {
            if self.reported_failed.contains(&slot.node) || !nodes.is_alive(slot.node) {
                slot.healthy = false;
            }
        }
        moved
    }

    /// Re-marks as healthy the members on `node` whose host is still the
    /// registered one, when the node is up for this group. Then re-places
    /// members stuck elsewhere, which may now fit. Returns the number
    /// re-marked healthy; publishes when anything changed.
    pub(crate) fn recover_node(
        &mut self,
        node: u64,
        nodes: &mut NodeTable,
        registry: &DaemonRegistry,
    ) -> usize {
        let mut marked = 0;
        if !self.node_down(nodes, node) {
            for slot in self
                .slots
                .iter_mut()
                .filter(|s| s.node == node && !s.healthy)
            {
                let registered = registry
                    .get(slot.identity.origin_hash())
                    .is_some_and(|h| Arc::ptr_eq(&h, &slot.host));
                if registered {
                    slot.healthy = true;
                    marked += 1;
                }
            }
        }
        let moved = self.heal(nodes, registry);
        if marked > 0 || !moved.is_empty() {
            self.publish(nodes);
            tracing::info!(group_id = self.group_id, kind = %self.kind, node, marked, "group recovered node");
        }
        marked
    }

    /// Publishes a new roster built from the slots.
    pub(crate) fn publish(&mut self, nodes: &NodeTable) {
        self.epoch += 1;
        let members = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let info = nodes.get(slot.node).map(|n| &n.info);
                let mut tags: Vec<u64> = info
                    .map(|n| n.tags().map(label_hash).collect())
                    .unwrap_or_default();
                tags.sort_unstable();
                Member {
                    index: i as u8,
                    origin_hash: slot.identity.origin_hash(),
                    node_id: slot.node,
                    entity_id: slot.identity.entity_id(),
                    healthy: slot.healthy,
                    weight: info.map_or(crate::node::DEFAULT_NODE_WEIGHT, |n| n.weight()),
                    zone: info.and_then(|n| n.zone()).map(label_hash),
                    tags: tags.into(),
                    stats: Arc::clone(slot.host.stats()),
                }
            })
            .collect();
        // Tables the new roster may reuse: the current one, and the one it
        // displaced, so toggling back (scale down and up, fail and recover
        // without a free node) costs no rebuild.
        let previous = self.roster.load();
        let reusable: Vec<Arc<Maglev>> = previous
            .maglev_table()
            .cloned()
            .into_iter()
            .chain(self.spare_table.take())
            .collect();
        let roster = Roster::new(self.epoch, self.term, members, self.strategy, &reusable);
        let current = roster.maglev_table();
        self.spare_table = reusable
            .into_iter()
            .find(|t| current.is_none_or(|c| !Arc::ptr_eq(c, t)));
        self.roster.store(Arc::new(roster));
    }

    /// Publishes the closed roster and unregisters every member.
    pub(crate) fn close(&mut self, nodes: &mut NodeTable, registry: &DaemonRegistry) {
        self.epoch += 1;
        self.roster
            .store(Arc::new(Roster::closed(self.epoch, self.term)));
        for slot in self.slots.drain(..) {
            registry.remove(slot.identity.origin_hash());
            nodes.detach(slot.node, self.key);
        }
    }
}
