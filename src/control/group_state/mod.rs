//! One group's mutable state, owned by the writer thread, and the changes the
//! writer makes to it. Each change is planned first (placement, factory
//! calls) and committed only when the whole plan succeeded, so a failed
//! command leaves the group, the registry and the published roster exactly
//! as they were.
//!
//! A change marks the group changed; the writer publishes each changed
//! group once, after the batch of commands it drained ([`GroupState::flush`]),
//! then answers the callers. Replicas that left are unregistered and retired
//! only after that publish, so no route picks a replica delivery no longer
//! knows; replicas that joined are registered before it, so every replica a
//! route picks can be delivered to.

mod failover;
mod scale;

use std::collections::BTreeSet;

use super::command::{GroupHandle, GroupRef};
use super::factories::{create, Factory};
use super::node_table::{GroupKey, NodeTable};
use super::registry::Registry;
use crate::config::ReplicaGroupConfig;
use crate::daemon::{contain, Daemon, HostSettings, PublicIdentity, Replica};
use crate::error::GroupError;
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
    /// `config.host_config` and what the strategy needs measured, shared by
    /// the group's replicas.
    settings: Arc<HostSettings>,
    factory: Arc<Factory>,
    requirements: CapabilityFilter,
    /// Replicas by index; once published, the same list the roster holds (a
    /// change builds a new one).
    replicas: Arc<[Arc<Replica>]>,
    /// Indices of the replicas routes may not pick.
    unhealthy: BTreeSet<u8>,
    /// Nodes reported failed to this group alone (`on_node_failure`).
    reported_failed: BTreeSet<u64>,
    /// Identities of the indices just past the replicas, kept from a shrink
    /// so that growing back derives no key: `shelf[i]` is index `len + i`.
    shelf: Vec<PublicIdentity>,
    /// Replicas that left since the last publish: unregistered (unless the
    /// registry already holds their successor) and retired after it.
    leaving: Vec<Arc<Replica>>,
    /// Whether a change awaits publishing.
    changed: bool,
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

impl GroupState {
    /// Creates, places and registers every replica of a new group, to be
    /// published at the next flush. On error nothing is registered and the
    /// node table is unchanged.
    pub(super) fn spawn(
        group: GroupRef,
        kind: Arc<str>,
        config: ReplicaGroupConfig,
        factory: Arc<Factory>,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Result<GroupState, GroupError> {
        let count = config.replica_count;
        let (mut state, first) = GroupState::with_requirements(group, kind, config, factory)?;
        let grown = state.plan_growth(count, Some(first), nodes, registry)?;
        state.commit_growth(grown, nodes, registry);
        Ok(state)
    }

    /// A group with no replica yet, its kind's requirements asked of a first
    /// daemon, which is dropped.
    #[cfg(feature = "etcd")]
    fn spawn_empty(
        group: GroupRef,
        kind: Arc<str>,
        config: ReplicaGroupConfig,
        factory: Arc<Factory>,
    ) -> Result<GroupState, GroupError> {
        GroupState::with_requirements(group, kind, config, factory).map(|(state, _)| state)
    }

    /// A group with no replica yet, and the daemon that told the kind's
    /// requirements. Every process of a cluster creates that first daemon,
    /// so all place alike; it becomes replica 0's daemon when that replica
    /// is hosted here.
    fn with_requirements(
        group: GroupRef,
        kind: Arc<str>,
        config: ReplicaGroupConfig,
        factory: Arc<Factory>,
    ) -> Result<(GroupState, Daemon), GroupError> {
        let GroupRef { key, group_id } = group;
        let mut first = create(&*factory, &kind, group_id)?;
        let requirements = contain(|| first.get().requirements()).map_err(|message| {
            GroupError::DaemonPanicked(format!(
                "a daemon of kind `{kind}` panicked in requirements() while group {group_id:#010x} was spawned, so it was not: {message}"
            ))
        })?;
        let strategy = config.lb_strategy;
        let state = GroupState {
            key,
            group_id,
            kind,
            settings: Arc::new(HostSettings::new(
                config.host_config.clone(),
                strategy.routes_on_latency(),
                strategy.routes_on_load(),
            )),
            config,
            factory,
            requirements,
            replicas: Arc::default(),
            unhealthy: BTreeSet::new(),
            reported_failed: BTreeSet::new(),
            shelf: Vec::new(),
            leaving: Vec::new(),
            changed: true,
            epoch: 0,
            term: 0,
            roster: Arc::new(ArcSwap::from_pointee(Roster::closed(0, 0))),
        };
        Ok((state, first))
    }

    /// A group restored from a snapshot taken by another runtime: the same
    /// replicas on the same nodes, with the same health, reported failures
    /// and term, to be published at the next flush. Daemons are created for
    /// the replicas this runtime hosts.
    #[cfg(feature = "etcd")]
    pub(super) fn restore(
        group: GroupRef,
        snapshot: &super::snapshot::GroupSnapshot,
        factory: Arc<Factory>,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) -> Result<GroupState, GroupError> {
        let config = ReplicaGroupConfig {
            replica_count: snapshot.placement.len() as u8,
            group_seed: snapshot.seed,
            lb_strategy: snapshot.strategy,
            host_config: crate::daemon::DaemonHostConfig::default(),
        };
        let mut state =
            GroupState::spawn_empty(group, snapshot.kind.as_str().into(), config, factory)?;
        let mut replicas = Vec::with_capacity(snapshot.placement.len());
        for (index, &node) in (0u8..).zip(&snapshot.placement) {
            let daemon = if nodes.hosts_here(node) {
                Some(create(&*state.factory, &state.kind, state.group_id)?)
            } else {
                None
            };
            let identity = state.identity(index);
            let settings = Arc::clone(&state.settings);
            replicas.push(Arc::new(Replica::new(identity, node, daemon, settings)));
        }
        for replica in &replicas {
            registry.put(replica);
            nodes.attach(replica.node_id());
        }
        state.replicas = replicas.into();
        state.unhealthy = snapshot.unhealthy.clone();
        state.reported_failed = snapshot.reported_failed.clone();
        state.term = snapshot.term;
        Ok(state)
    }

    /// This group as a snapshot restores it.
    #[cfg(feature = "etcd")]
    pub(super) fn snapshot(&self) -> super::snapshot::GroupSnapshot {
        super::snapshot::GroupSnapshot {
            kind: self.kind.to_string(),
            seed: self.config.group_seed,
            strategy: self.config.lb_strategy,
            placement: self.replicas.iter().map(|r| r.node_id()).collect(),
            unhealthy: self.unhealthy.clone(),
            reported_failed: self.reported_failed.clone(),
            term: self.term,
        }
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

    /// Publishes the group's roster if a change awaits, then unregisters and
    /// retires the replicas that left (a registry entry that already names a
    /// successor stays).
    pub(super) fn flush(&mut self, nodes: &NodeTable, registry: &Registry) {
        if !self.changed {
            return;
        }
        self.changed = false;
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
        let healthy = listed.iter().filter(|(healthy, _)| *healthy).count();
        self.settings.set_healthy(healthy as u32);
        let roster = Roster::new(self.epoch, self.term, strategy, replicas, &listed);
        self.roster.store(Arc::new(roster));
        self.release_leaving(registry);
    }

    fn release_leaving(&mut self, registry: &Registry) {
        for replica in self.leaving.drain(..) {
            registry.remove_if_held(&replica);
            // Its daemon is dropped here, on the writer, unless a delivery
            // holds it (that delivery drops it); a panicking `Drop` is
            // contained either way (see `Daemon`).
            drop(replica.retire());
        }
    }

    /// Publishes the closed roster (the runtime shuts down), unregisters and
    /// retires every replica.
    pub(super) fn close(&mut self, nodes: &mut NodeTable, registry: &Registry) {
        self.end(Roster::closed, nodes, registry);
    }

    /// Publishes the removed roster, unregisters and retires every replica.
    pub(super) fn remove(&mut self, nodes: &mut NodeTable, registry: &Registry) {
        self.end(Roster::removed, nodes, registry);
    }

    /// Publishes the last roster (no replicas) at once, then unregisters and
    /// retires every replica: once the call returns, no route picks one and
    /// no delivery finds one.
    fn end(
        &mut self,
        last: impl FnOnce(u64, u64) -> Roster,
        nodes: &mut NodeTable,
        registry: &Registry,
    ) {
        self.epoch += 1;
        self.roster.store(Arc::new(last(self.epoch, self.term)));
        self.changed = false;
        self.unhealthy.clear();
        self.shelf.clear();
        let replicas = std::mem::take(&mut self.replicas);
        for replica in replicas.iter() {
            nodes.detach(replica.node_id());
        }
        self.leaving.extend(replicas.iter().cloned());
        self.release_leaving(registry);
    }
}
