//! The operations and the values they carry, as `arbitrary` builds them from
//! fuzzer bytes. Every field is small and total: any value maps onto a valid
//! argument (or a deliberately invalid one, such as an unknown node id).

use arbitrary::{Arbitrary, Unstructured};

use super::{MAX_NODES, MAX_OPS};

use replica_router::{NodeInfo, RequestContext, Strategy, DEFAULT_NODE_WEIGHT};

/// Node ids the operations use: `1..=12` are the usual ones, `0` and `13` are
/// unknown unless a scenario adds them.
const NODE_IDS: u8 = 14;

/// Zone names: `z0`, `z1`, `z2`; contexts may also prefer `zx`, which no
/// node is in.
const ZONES: [&str; 4] = ["z0", "z1", "z2", "zx"];

/// Tag names: nodes carry `a` and `b`; contexts may also require `c`.
const TAGS: [&str; 3] = ["a", "b", "c"];

/// A whole fuzz input: the runtime's initial nodes, then the operations.
///
/// Built from bytes as: a node count (at most [`MAX_NODES`]), the nodes,
/// then operations until the bytes (or [`MAX_OPS`]) run out, so every byte
/// string is a scenario and longer ones are longer scenarios.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Nodes the runtime starts with (a repeated id keeps the last).
    pub nodes: Vec<NodeSpec>,
    /// Operations, applied in order.
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = u.int_in_range(0..=MAX_NODES)?;
        let nodes = (0..count)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            let op: Op = u.arbitrary()?;
            // Everything after a shutdown is refused: keep one in eight, so
            // that most scenarios spend their operations on a live runtime.
            if matches!(op, Op::Shutdown) && !u.ratio(1, 8)? {
                continue;
            }
            ops.push(op);
        }
        Ok(Scenario { nodes, ops })
    }
}

/// A node: id `id % 14`, an optional zone, tags from a bit set, a weight.
#[derive(Arbitrary, Debug, Clone)]
pub struct NodeSpec {
    /// The node id, modulo 14.
    pub id: u8,
    /// `z0`, `z1` or `z2` (modulo 3), or no zone.
    pub zone: Option<u8>,
    /// Bit 0: tag `a`; bit 1: tag `b`.
    pub tags: u8,
    /// The node's weight.
    pub weight: Weight,
}

/// Node weights worth telling apart.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// The default, 100.
    Default,
    /// 0: never preferred by the weighted strategies.
    Zero,
    /// 1.
    Light,
    /// 300.
    Heavy,
    /// `u32::MAX`.
    Huge,
}

/// The daemon kind a spawn asks for. Built from bytes as `Plain` 9 times in
/// 20, `Tagged` 4 in 20, `Volatile` 3 in 20, `Missing`, `Broken` and
/// `Unplaceable` 1 in 20 each, so that most spawns can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Echoes; placeable anywhere.
    Plain,
    /// Echoes; needs nodes tagged `a`.
    Tagged,
    /// Echoes, but its `load()` and its `Drop` panic: every delivery,
    /// shrink, failover, removal and shutdown runs panicking user code.
    Volatile,
    /// Never registered: `FactoryNotFound`.
    Missing,
    /// Its factory panics: `FactoryFailed`.
    Broken,
    /// Its `requirements()` panics: `DaemonPanicked`.
    Unplaceable,
}

/// A routing context.
#[derive(Arbitrary, Debug, Clone)]
pub struct ContextSpec {
    /// A routing key.
    pub key: Option<Vec<u8>>,
    /// A session.
    pub session: Option<u64>,
    /// A preferred zone: `z0`, `z1`, `z2` or `zx` (modulo 4).
    pub zone: Option<u8>,
    /// Required tags, bit `i` for `a`, `b`, `c`.
    pub tags: u8,
}

/// What a delivery carries, and so what the daemon does with it.
#[derive(Arbitrary, Debug, Clone)]
pub enum Payload {
    /// Echoed back.
    Echo(Vec<u8>),
    /// The daemon returns `ProcessFailed`.
    Fail,
    /// The daemon panics.
    Panic,
}

/// Whom a delivery goes to.
#[derive(Arbitrary, Debug, Clone)]
pub enum Target {
    /// Member `index` (modulo the group's size) of group `group`.
    Member {
        /// The group, modulo the groups spawned.
        group: u8,
        /// The member.
        index: u8,
    },
    /// Whichever member a route of `context` on group `group` returns.
    Routed {
        /// The group, modulo the groups spawned.
        group: u8,
        /// The context routed with.
        context: ContextSpec,
    },
    /// Replica `index` (modulo 8) of seed `seed` (modulo 6), which may be a
    /// member of a group, a removed one, or one of no group.
    Identity {
        /// The seed byte.
        seed: u8,
        /// The index.
        index: u8,
    },
    /// An origin hash nobody has.
    Unknown(u64),
}

/// One operation, applied to the runtime and to the reference model.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// `ReplicaGroup::spawn` of `count % 7` replicas with seed `[seed % 6; 32]`.
    Spawn {
        /// The kind.
        kind: Kind,
        /// The seed byte, modulo 6.
        seed: u8,
        /// Replicas, modulo 7 (0 is invalid).
        count: u8,
        /// `Strategy::ALL[strategy % 11]`.
        strategy: u8,
        /// Circuit failure threshold, `1 + threshold % 5`.
        threshold: u8,
    },
    /// `ReplicaGroup::scale_to(count % 7)`.
    ScaleTo {
        /// The group, modulo the groups spawned.
        group: u8,
        /// Replicas, modulo 7 (0 is invalid).
        count: u8,
    },
    /// `DaemonRuntime::add_node`.
    AddNode(NodeSpec),
    /// `DaemonRuntime::node_failed(id % 14)`.
    NodeFailed(u8),
    /// `DaemonRuntime::node_recovered(id % 14)`.
    NodeRecovered(u8),
    /// `ReplicaGroup::on_node_failure(node % 14)`.
    GroupNodeFailure {
        /// The group, modulo the groups spawned.
        group: u8,
        /// The node id, modulo 14.
        node: u8,
    },
    /// `ReplicaGroup::on_node_recovery(node % 14)`.
    GroupNodeRecovery {
        /// The group, modulo the groups spawned.
        group: u8,
        /// The node id, modulo 14.
        node: u8,
    },
    /// A route, through `route_event` or the group's `Router`.
    Route {
        /// The group, modulo the groups spawned.
        group: u8,
        /// The context.
        context: ContextSpec,
        /// Through the group's `Router` instead of `route_event`.
        via_router: bool,
    },
    /// `DaemonRuntime::deliver`.
    Deliver {
        /// Whom to.
        target: Target,
        /// What.
        payload: Payload,
    },
    /// `ReplicaGroup::remove`.
    Remove {
        /// The group, modulo the groups spawned.
        group: u8,
    },
    /// `DaemonRuntime::shutdown`.
    Shutdown,
}

pub(crate) fn node_id(id: u8) -> u64 {
    u64::from(id % NODE_IDS)
}

pub(crate) fn seed(byte: u8) -> [u8; 32] {
    [byte % 6; 32]
}

pub(crate) fn strategy(index: u8) -> Strategy {
    Strategy::ALL[index as usize % Strategy::ALL.len()]
}

impl NodeSpec {
    pub(crate) fn zone_name(&self) -> Option<&'static str> {
        self.zone.map(|z| ZONES[z as usize % 3])
    }

    pub(crate) fn tag_names(&self) -> Vec<&'static str> {
        TAGS[..2]
            .iter()
            .enumerate()
            .filter(|(i, _)| self.tags & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect()
    }

    pub(crate) fn info(&self) -> NodeInfo {
        let weight = match self.weight {
            Weight::Default => DEFAULT_NODE_WEIGHT,
            Weight::Zero => 0,
            Weight::Light => 1,
            Weight::Heavy => 300,
            Weight::Huge => u32::MAX,
        };
        let mut info = NodeInfo::new(node_id(self.id)).with_weight(weight);
        if let Some(zone) = self.zone_name() {
            info = info.with_zone(zone);
        }
        for tag in self.tag_names() {
            info = info.with_tag(tag);
        }
        info
    }
}

impl<'a> Arbitrary<'a> for Kind {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=8 => Kind::Plain,
            9..=12 => Kind::Tagged,
            13..=15 => Kind::Volatile,
            16 => Kind::Missing,
            17 => Kind::Broken,
            _ => Kind::Unplaceable,
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1))
    }
}

impl Kind {
    /// The kind's name at the runtime.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Tagged => "tagged",
            Kind::Volatile => "volatile",
            Kind::Missing => "missing",
            Kind::Broken => "broken",
            Kind::Unplaceable => "unplaceable",
        }
    }

    /// The tag its daemons require of a node.
    pub(crate) fn required_tag(self) -> Option<&'static str> {
        (self == Kind::Tagged).then_some("a")
    }
}

impl ContextSpec {
    pub(crate) fn zone_name(&self) -> Option<&'static str> {
        self.zone.map(|z| ZONES[z as usize % ZONES.len()])
    }

    pub(crate) fn tag_names(&self) -> Vec<&'static str> {
        TAGS.iter()
            .enumerate()
            .filter(|(i, _)| self.tags & (1 << i) != 0)
            .map(|(_, t)| *t)
            .collect()
    }

    pub(crate) fn context(&self) -> RequestContext {
        let mut ctx = RequestContext::new();
        if let Some(key) = &self.key {
            ctx = ctx.with_routing_key(key);
        }
        if let Some(session) = self.session {
            ctx = ctx.with_session(session);
        }
        if let Some(zone) = self.zone_name() {
            ctx = ctx.with_zone(zone);
        }
        for tag in self.tag_names() {
            ctx = ctx.require_tag(tag);
        }
        ctx
    }
}
