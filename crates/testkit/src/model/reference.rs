//! The reference model: what the crate docs' guarantees say the runtime does, written
//! plainly with vectors and loops: no rosters, no tables, no threads, no
//! caches. Placement, failover, healing, recovery and shrinking follow the
//! rules as stated; the interpreter compares the real runtime with this
//! after every operation.

use std::collections::BTreeMap;

use replica_router::{
    derive_replica_identity, DeliverError, GroupError, GroupHealth, RuntimeError, Strategy,
};

/// A node as the model tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) zone: Option<String>,
    pub(crate) tags: Vec<String>,
    /// Only weight 0 matters to the model: such a node's members are drained.
    pub(crate) weight: u32,
    pub(crate) alive: bool,
}

/// One replica slot: where it is, and its host's circuit (a fresh host, with
/// fresh statistics, whenever the replica is created or re-placed).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) origin: u64,
    pub(crate) node: u64,
    pub(crate) healthy: bool,
    failures: u32,
    open: bool,
}

/// A group as the model tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) seed: [u8; 32],
    pub(crate) strategy: Strategy,
    requires: Option<String>,
    threshold: u32,
    pub(crate) slots: Vec<Slot>,
    /// Nodes reported failed to this group alone.
    reported: Vec<u64>,
    pub(crate) term: u64,
    /// Removed: no replicas, and every later call on it is `Removed`.
    removed: bool,
}

impl Group {
    /// The group's health, from its slots.
    pub(crate) fn health(&self) -> GroupHealth {
        let total = self.slots.len() as u8;
        let healthy = self.slots.iter().filter(|s| s.healthy).count() as u8;
        if total > 0 && healthy == total {
            GroupHealth::Healthy
        } else if healthy == 0 {
            GroupHealth::Dead
        } else {
            GroupHealth::Degraded { healthy, total }
        }
    }
}

/// How a delivery ends, in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivered {
    Outputs(Vec<u8>),
    Failed,
    Panicked,
}

/// What a daemon does with a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    Echo,
    Fail,
    Panic,
}

/// The whole model.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// Every node, in id order.
    pub(crate) nodes: Vec<Node>,
    /// Groups in spawn order (the interpreter's handles, in the same order).
    pub(crate) groups: Vec<Group>,
    pub(crate) shut_down: bool,
    /// Identities derived so far: (seed, index) → (origin hash, entity id).
    identities: BTreeMap<([u8; 32], u8), (u64, [u8; 32])>,
}

impl Model {
    pub(crate) fn new(nodes: Vec<Node>) -> Self {
        let mut model = Model::default();
        for node in nodes {
            // A repeated id keeps the last description.
            model.nodes.retain(|n| n.id != node.id);
            model.nodes.push(node);
        }
        model.nodes.sort_by_key(|n| n.id);
        model
    }

    fn identity(&mut self, seed: [u8; 32], index: u8) -> (u64, [u8; 32]) {
        *self.identities.entry((seed, index)).or_insert_with(|| {
            let identity = derive_replica_identity(&seed, index);
            (identity.origin_hash(), identity.entity_id())
        })
    }

    /// The origin hash of replica `index` of `seed`.
    pub(crate) fn origin(&mut self, seed: [u8; 32], index: u8) -> u64 {
        self.identity(seed, index).0
    }

    /// The entity id of replica `index` of `seed`.
    pub(crate) fn entity_id(&mut self, seed: [u8; 32], index: u8) -> [u8; 32] {
        self.identity(seed, index).1
    }

    fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn alive(&self, id: u64) -> bool {
        self.node(id).is_some_and(|n| n.alive)
    }

    /// Whether `node` cannot serve group `g`: failed, or reported failed to it.
    fn down(&self, g: usize, node: u64) -> bool {
        !self.alive(node) || self.groups[g].reported.contains(&node)
    }

    /// Replicas placed on `node`, over every group.
    fn hosted(&self, node: u64) -> usize {
        let slots = self.groups.iter().flat_map(|g| &g.slots);
        slots.filter(|s| s.node == node).count()
    }

    /// Guarantee 3: up to `wanted` nodes for new members of a group whose
    /// members sit on `occupied`, never on `excluded`: one at a time, each an
    /// alive node carrying `requires` and holding no member; the zone least
    /// used by the group first, then the node hosting the fewest replicas,
    /// then the lowest id. Stops at the first member with no node.
    fn place(
        &self,
        requires: Option<&str>,
        occupied: &[u64],
        excluded: &[u64],
        wanted: usize,
    ) -> Vec<u64> {
        let mut members: Vec<u64> = occupied.to_vec();
        let mut chosen: Vec<u64> = Vec::new();
        for _ in 0..wanted {
            let mut best: Option<(usize, usize, u64)> = None;
            for node in &self.nodes {
                let eligible = node.alive
                    && !members.contains(&node.id)
                    && !excluded.contains(&node.id)
                    && requires.is_none_or(|t| node.tags.iter().any(|n| n == t));
                if !eligible {
                    continue;
                }
                let zone_use = members
                    .iter()
                    .filter(|m| self.node(**m).is_some_and(|n| n.zone == node.zone))
                    .count();
                let load = self.hosted(node.id);
                let key = (zone_use, load, node.id);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
            let Some((_, _, id)) = best else { break };
            members.push(id);
            chosen.push(id);
        }
        chosen
    }

    fn fresh(origin: u64, node: u64) -> Slot {
        Slot {
            origin,
            node,
            healthy: true,
            failures: 0,
            open: false,
        }
    }

    /// Guarantee 5: every member whose node is down moves to a free node with
    /// its identity (a new host), in index order while nodes last; members
    /// left on down nodes are unhealthy. Returns the indices moved.
    fn heal(&mut self, g: usize) -> Vec<u8> {
        let stuck: Vec<usize> = (0..self.groups[g].slots.len())
            .filter(|&i| self.down(g, self.groups[g].slots[i].node))
            .collect();
        if stuck.is_empty() {
            return Vec::new();
        }
        let group = &self.groups[g];
        let staying: Vec<u64> = (0..group.slots.len())
            .filter(|i| !stuck.contains(i))
            .map(|i| group.slots[i].node)
            .collect();
        let mut excluded: Vec<u64> = stuck.iter().map(|&i| group.slots[i].node).collect();
        excluded.extend(&group.reported);
        let targets = self.place(group.requires.as_deref(), &staying, &excluded, stuck.len());
        let mut moved = Vec::new();
        for (&i, &node) in stuck.iter().zip(&targets) {
            let group = &mut self.groups[g];
            group.slots[i] = Self::fresh(group.slots[i].origin, node);
            group.term += 1;
            moved.push(i as u8);
        }
        for i in 0..self.groups[g].slots.len() {
            if self.down(g, self.groups[g].slots[i].node) {
                self.groups[g].slots[i].healthy = false;
            }
        }
        moved
    }

    /// Marks the members on `node` unhealthy, then heals.
    fn fail_node(&mut self, g: usize, node: u64) -> Vec<u8> {
        for slot in &mut self.groups[g].slots {
            if slot.node == node {
                slot.healthy = false;
            }
        }
        self.heal(g)
    }

    /// Guarantee 6: members on `node` become healthy when it is up for the
    /// group (their host is always the registered one here), then heals.
    fn recover_node(&mut self, g: usize, node: u64) -> usize {
        let mut marked = 0;
        if !self.down(g, node) {
            for slot in &mut self.groups[g].slots {
                if slot.node == node && !slot.healthy {
                    slot.healthy = true;
                    marked += 1;
                }
            }
        }
        self.heal(g);
        marked
    }

    fn heal_stuck(&mut self) {
        for g in 0..self.groups.len() {
            self.heal(g);
        }
    }

    fn groups_on(&self, node: u64) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].slots.iter().any(|s| s.node == node))
            .collect()
    }

    /// The model's state, for a divergence report.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::from("model nodes (id, zone, tags, weight, alive):");
        for n in &self.nodes {
            out += &format!(
                " ({}, {:?}, {:?}, {}, {})",
                n.id, n.zone, n.tags, n.weight, n.alive
            );
        }
        for (g, group) in self.groups.iter().enumerate() {
            out += &format!(
                "\ngroup {g} ({:?}, requires {:?}, reported {:?}) members (origin, node, healthy, circuit open):",
                group.strategy, group.requires, group.reported
            );
            for s in &group.slots {
                out += &format!(
                    " ({:#018x}, {}, {}, {})",
                    s.origin, s.node, s.healthy, s.open
                );
            }
        }
        out
    }

    /// `ReplicaGroup::spawn`.
    pub(crate) fn spawn(
        &mut self,
        kind: super::Kind,
        seed: [u8; 32],
        count: u8,
        strategy: Strategy,
        threshold: u32,
    ) -> Result<(), GroupError> {
        if self.shut_down {
            return Err(GroupError::ShuttingDown);
        }
        if count == 0 {
            return Err(GroupError::InvalidConfig(String::new()));
        }
        if kind == super::Kind::Missing {
            return Err(GroupError::FactoryNotFound(String::new()));
        }
        if self.groups.iter().any(|g| g.seed == seed && !g.removed) {
            return Err(GroupError::InvalidConfig(String::new()));
        }
        if kind == super::Kind::Broken {
            return Err(GroupError::FactoryFailed(String::new()));
        }
        if kind == super::Kind::Unplaceable {
            return Err(GroupError::DaemonPanicked(String::new()));
        }
        let requires = kind.required_tag().map(str::to_owned);
        let targets = self.place(requires.as_deref(), &[], &[], count as usize);
        if targets.len() < count as usize {
            return Err(GroupError::PlacementFailed(String::new()));
        }
        let slots = (0..count)
            .zip(targets)
            .map(|(i, node)| Self::fresh(self.origin(seed, i), node))
            .collect();
        self.groups.push(Group {
            seed,
            strategy,
            requires,
            threshold,
            slots,
            reported: Vec::new(),
            term: 0,
            removed: false,
        });
        Ok(())
    }

    /// `ReplicaGroup::remove`: every replica leaves, the seed is free again.
    pub(crate) fn remove(&mut self, g: usize) -> Result<(), GroupError> {
        let group = &mut self.groups[g];
        if group.removed {
            return Err(GroupError::Removed);
        }
        if self.shut_down {
            return Err(GroupError::ShuttingDown);
        }
        group.removed = true;
        group.slots.clear();
        group.reported.clear();
        Ok(())
    }

    /// `ReplicaGroup::scale_to`: growth is all or nothing; shrinking removes
    /// the highest indices; both then heal stuck members.
    pub(crate) fn scale_to(&mut self, g: usize, count: u8) -> Result<(), GroupError> {
        if self.groups[g].removed {
            return Err(GroupError::Removed);
        }
        if self.shut_down {
            return Err(GroupError::ShuttingDown);
        }
        if count == 0 {
            return Err(GroupError::InvalidConfig(String::new()));
        }
        let len = self.groups[g].slots.len();
        if count as usize > len {
            let group = &self.groups[g];
            let occupied: Vec<u64> = group.slots.iter().map(|s| s.node).collect();
            let wanted = count as usize - len;
            let targets = self.place(
                group.requires.as_deref(),
                &occupied,
                &group.reported,
                wanted,
            );
            if targets.len() < wanted {
                return Err(GroupError::PlacementFailed(String::new()));
            }
            for (index, node) in (len as u8..count).zip(targets) {
                let origin = self.origin(self.groups[g].seed, index);
                self.groups[g].slots.push(Self::fresh(origin, node));
            }
        } else {
            self.groups[g].slots.truncate(count as usize);
        }
        self.heal(g);
        Ok(())
    }

    /// `ReplicaGroup::on_node_failure`.
    pub(crate) fn group_node_failure(
        &mut self,
        g: usize,
        node: u64,
    ) -> Result<Vec<u8>, GroupError> {
        if self.groups[g].removed {
            return Err(GroupError::Removed);
        }
        if self.shut_down {
            return Err(GroupError::ShuttingDown);
        }
        if self.node(node).is_some() && !self.groups[g].reported.contains(&node) {
            self.groups[g].reported.push(node);
        }
        Ok(self.fail_node(g, node))
    }

    /// `ReplicaGroup::on_node_recovery`.
    pub(crate) fn group_node_recovery(&mut self, g: usize, node: u64) {
        if self.shut_down || self.groups[g].removed {
            return;
        }
        self.groups[g].reported.retain(|&n| n != node);
        self.recover_node(g, node);
    }

    /// `DaemonRuntime::add_node`.
    pub(crate) fn add_node(&mut self, node: Node) -> Result<(), RuntimeError> {
        if self.shut_down {
            return Err(RuntimeError::ShuttingDown);
        }
        if self.node(node.id).is_some() {
            return Err(RuntimeError::DuplicateNode(node.id));
        }
        self.nodes.push(node);
        self.nodes.sort_by_key(|n| n.id);
        self.heal_stuck();
        Ok(())
    }

    /// `DaemonRuntime::node_failed`.
    pub(crate) fn node_failed(&mut self, id: u64) -> Result<usize, RuntimeError> {
        if self.shut_down {
            return Err(RuntimeError::ShuttingDown);
        }
        let node = self.nodes.iter_mut().find(|n| n.id == id);
        node.ok_or(RuntimeError::UnknownNode(id))?.alive = false;
        let mut replaced = 0;
        for g in self.groups_on(id) {
            replaced += self.fail_node(g, id).len();
        }
        Ok(replaced)
    }

    /// `DaemonRuntime::node_recovered`.
    pub(crate) fn node_recovered(&mut self, id: u64) -> Result<usize, RuntimeError> {
        if self.shut_down {
            return Err(RuntimeError::ShuttingDown);
        }
        let node = self.nodes.iter_mut().find(|n| n.id == id);
        node.ok_or(RuntimeError::UnknownNode(id))?.alive = true;
        for group in &mut self.groups {
            group.reported.retain(|&n| n != id);
        }
        let mut marked = 0;
        for g in self.groups_on(id) {
            marked += self.recover_node(g, id);
        }
        self.heal_stuck();
        Ok(marked)
    }

    /// `DaemonRuntime::shutdown`: every group closes, every replica leaves.
    pub(crate) fn shutdown(&mut self) {
        self.shut_down = true;
        for group in &mut self.groups {
            group.slots.clear();
        }
    }

    /// The members a route of group `g` may return for a context requiring
    /// `tags` and preferring `zone`: healthy, circuit closed, on a node
    /// carrying every tag; those in `zone` only, when there are any. Members
    /// on nodes of weight 0 are drained (unless every healthy member is):
    /// they are returned only when no other member qualifies.
    pub(crate) fn routable(
        &self,
        g: usize,
        tags: &[&str],
        zone: Option<&str>,
    ) -> Result<Vec<u64>, GroupError> {
        if self.groups[g].removed {
            return Err(GroupError::Removed);
        }
        if self.shut_down {
            return Err(GroupError::ShuttingDown);
        }
        let node_of = |s: &Slot| self.node(s.node).expect("members sit on known nodes");
        let healthy: Vec<&Slot> = self.groups[g].slots.iter().filter(|s| s.healthy).collect();
        let all_drained = healthy.iter().all(|s| node_of(s).weight == 0);
        let drained = |s: &Slot| !all_drained && node_of(s).weight == 0;
        let admissible =
            |s: &&&Slot| !s.open && tags.iter().all(|t| node_of(s).tags.iter().any(|n| n == t));
        for tier in [false, true] {
            let candidates: Vec<&Slot> = healthy
                .iter()
                .filter(|s| drained(s) == tier)
                .filter(admissible)
                .copied()
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let local: Vec<u64> = candidates
                .iter()
                .filter(|s| zone.is_some() && node_of(s).zone.as_deref() == zone)
                .map(|s| s.origin)
                .collect();
            if !local.is_empty() {
                return Ok(local);
            }
            return Ok(candidates.iter().map(|s| s.origin).collect());
        }
        Err(GroupError::NoHealthyMember)
    }

    /// `DaemonRuntime::deliver` of a payload the daemon reacts to with
    /// `reaction`: the registered replica processes it unless its circuit is
    /// open; consecutive failures (errors and panics) open the circuit at the
    /// group's threshold, and it stays open (the interpreter's recovery
    /// window outlasts any run).
    pub(crate) fn deliver(
        &mut self,
        origin: u64,
        payload: &[u8],
        reaction: Reaction,
    ) -> Result<Delivered, DeliverError> {
        if self.shut_down {
            return Err(DeliverError::ShuttingDown);
        }
        let found = self.groups.iter_mut().find_map(|g| {
            let threshold = g.threshold;
            g.slots
                .iter_mut()
                .find(|s| s.origin == origin)
                .map(|s| (s, threshold))
        });
        let Some((slot, threshold)) = found else {
            return Err(DeliverError::UnknownOrigin(origin));
        };
        if slot.open {
            return Err(DeliverError::CircuitOpen(origin));
        }
        if reaction == Reaction::Echo {
            slot.failures = 0;
            return Ok(Delivered::Outputs(payload.to_vec()));
        }
        slot.failures += 1;
        if slot.failures >= threshold.max(1) {
            slot.open = true;
        }
        Ok(match reaction {
            Reaction::Fail => Delivered::Failed,
            _ => Delivered::Panicked,
        })
    }
}
