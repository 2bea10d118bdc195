//! Arbitrary values at the public API: node ids, zones, tags and weights;
//! kind names; group configs (any count, seed, strategy, threshold, recovery
//! window); routing contexts (keys, sessions, zones, tags); origin hashes and
//! payloads; in any order, on a runtime or a cluster-mode one. Nothing may
//! panic: every refusal is a typed error, and whatever succeeds is
//! consistent (a route returns a healthy member, a delivery the daemon's
//! outputs, `replicas()` is ordered by index on distinct nodes).
//!
//! Driven by `fuzz/` (cargo-fuzz, target `inputs`) and by
//! `tests/arbitrary_calls.rs` on stable. [`run`] panics where the runtime
//! breaks a promise; [`Calls`] are [`arbitrary`]-built, so any byte string
//! is one:
//!
//! ```
//! use replica_router_testkit::inputs::{run, Calls};
//! let mut bytes = arbitrary::Unstructured::new(&[3; 512]);
//! let calls: Calls = bytes.arbitrary().unwrap();
//! run(&calls);
//! ```

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use replica_router::*;

/// Calls [`run`] makes at most.
pub const MAX_CALLS: usize = 48;

/// Nodes a runtime starts with at most.
pub const MAX_NODES: usize = 16;

/// A node, as [`NodeInfo`] builds it.
#[derive(Arbitrary, Debug, Clone)]
pub struct Node {
    /// The id.
    pub id: u64,
    /// `with_zone`.
    pub zone: Option<String>,
    /// `with_tag`, each.
    pub tags: Vec<String>,
    /// `with_weight`.
    pub weight: Option<u32>,
}

/// A routing context, as [`RequestContext`] builds it.
#[derive(Arbitrary, Debug, Clone)]
pub struct Context {
    /// `with_routing_key`.
    pub key: Option<Vec<u8>>,
    /// `with_session`.
    pub session: Option<u64>,
    /// `with_zone`.
    pub zone: Option<String>,
    /// `require_tag`, each.
    pub tags: Vec<String>,
}

/// A spawn: the kind and every field of its [`ReplicaGroupConfig`].
#[derive(Arbitrary, Debug, Clone)]
pub struct Config {
    /// The kind spawned (registered or not).
    pub kind: String,
    /// `replica_count`.
    pub replica_count: u8,
    /// `group_seed`.
    pub group_seed: [u8; 32],
    /// `Strategy::ALL[strategy % 11]`.
    pub strategy: u8,
    /// `circuit_failure_threshold`.
    pub threshold: u32,
    /// `circuit_recovery`.
    pub recovery: Duration,
}

/// One call at the public API. `group` picks a spawned group, modulo the
/// groups spawned (none: the call is skipped).
#[derive(Arbitrary, Debug, Clone)]
#[allow(missing_docs)] // a variant's fields are the arguments of its call
pub enum Call {
    /// `register_factory(kind)`, daemons needing `requires`.
    Register { kind: String, requires: Vec<String> },
    /// `start`.
    Start,
    /// `ReplicaGroup::spawn`.
    Spawn(Config),
    /// `route_event`, or `Router::route`.
    Route {
        group: u8,
        context: Context,
        via_router: bool,
    },
    /// `ReplicaGroup::dispatch`.
    Dispatch {
        group: u8,
        context: Context,
        payload: Vec<u8>,
    },
    /// `deliver` to any origin hash.
    Deliver { origin: u64, payload: Vec<u8> },
    /// `deliver` to member `index` (modulo the group's size).
    DeliverToMember {
        group: u8,
        index: u8,
        payload: Vec<u8>,
    },
    /// `scale_to`.
    ScaleTo { group: u8, count: u8 },
    /// `add_node`.
    AddNode(Node),
    /// `node_failed`.
    NodeFailed(u64),
    /// `node_recovered`.
    NodeRecovered(u64),
    /// `on_node_failure`.
    OnNodeFailure { group: u8, node: u64 },
    /// `on_node_recovery`.
    OnNodeRecovery { group: u8, node: u64 },
    /// `roster_digest`.
    Digest,
    /// `shutdown`.
    Shutdown,
}

/// A whole input: a runtime's nodes (the first [`MAX_NODES`]), then the
/// calls made on it (the first [`MAX_CALLS`]).
#[derive(Arbitrary, Debug, Clone)]
pub struct Calls {
    /// Cluster mode: this process is that node.
    pub local: Option<u64>,
    /// The nodes the runtime starts with.
    pub nodes: Vec<Node>,
    /// The calls, in order.
    pub calls: Vec<Call>,
}

/// Echoes its payload, fails a payload starting with 0, reports the last
/// payload's first 8 bytes as its load (any f64: NaN, infinities, negative).
#[derive(Debug)]
struct Scripted {
    requires: Vec<String>,
    load: f64,
}

impl MeshDaemon for Scripted {
    fn name(&self) -> &str {
        "fuzz"
    }

    fn process(&mut self, event: &Event) -> Result<Vec<Bytes>, DaemonError> {
        let payload = event.payload();
        if payload.len() >= 8 {
            self.load = f64::from_le_bytes(payload[..8].try_into().unwrap());
        }
        match payload.first() {
            Some(0) => Err(DaemonError::ProcessFailed("payload starts with 0".into())),
            _ => Ok(vec![payload.clone()]),
        }
    }

    fn requirements(&self) -> CapabilityFilter {
        self.requires
            .iter()
            .fold(CapabilityFilter::new(), |f, t| f.require_tag(t))
    }

    fn load(&self) -> f64 {
        self.load
    }
}

fn node(n: &Node) -> NodeInfo {
    let mut info = NodeInfo::new(n.id);
    if let Some(zone) = &n.zone {
        info = info.with_zone(zone);
    }
    for tag in &n.tags {
        info = info.with_tag(tag);
    }
    if let Some(weight) = n.weight {
        info = info.with_weight(weight);
    }
    info
}

fn context(c: &Context) -> RequestContext {
    let mut ctx = RequestContext::new();
    if let Some(key) = &c.key {
        ctx = ctx.with_routing_key(key);
    }
    if let Some(session) = c.session {
        ctx = ctx.with_session(session);
    }
    if let Some(zone) = &c.zone {
        ctx = ctx.with_zone(zone);
    }
    for tag in &c.tags {
        ctx = ctx.require_tag(tag);
    }
    ctx
}

/// A typed error: `std::error::Error + Send + Sync`, with a message.
fn typed<E: std::error::Error + Send + Sync + 'static>(error: E) {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    assert!(!boxed.to_string().is_empty());
}

/// What a successful delivery of `payload` must return.
fn check_delivery(result: Result<Vec<Bytes>, DeliverError>, payload: &[u8]) {
    match result {
        Ok(outputs) => assert_eq!(outputs, vec![Bytes::copy_from_slice(payload)]),
        Err(DeliverError::Daemon { .. }) => assert_eq!(payload.first(), Some(&0)),
        Err(e) => typed(e),
    }
}

/// `replicas()` is ordered by index, on distinct nodes, and agrees with the
/// counts and the health.
fn check_group(group: &ReplicaGroup) {
    let members = group.replicas();
    assert!(members
        .iter()
        .enumerate()
        .all(|(i, m)| m.index as usize == i));
    let mut nodes: Vec<u64> = members.iter().map(|m| m.node_id).collect();
    nodes.sort_unstable();
    nodes.dedup();
    assert_eq!(nodes.len(), members.len(), "two members on one node");
    let healthy = members.iter().filter(|m| m.healthy).count() as u8;
    let total = members.len() as u8;
    assert_eq!(group.replica_count(), total);
    assert_eq!(group.healthy_count(), healthy);
    let health = match (healthy, total) {
        (h, t) if h == t && t > 0 => GroupHealth::Healthy,
        (0, _) => GroupHealth::Dead,
        (healthy, total) => GroupHealth::Degraded { healthy, total },
    };
    assert_eq!(group.health(), health);
}

/// Makes the calls on a fresh runtime, checking every answer; panics where
/// one breaks a promise.
pub fn run(input: &Calls) {
    let nodes = input.nodes.iter().take(MAX_NODES).map(node);
    let runtime = match input.local {
        Some(local) => DaemonRuntime::for_node(local, nodes),
        None => DaemonRuntime::new(nodes),
    };
    let mut groups: Vec<(ReplicaGroup, Router)> = Vec::new();
    for call in input.calls.iter().take(MAX_CALLS) {
        let pick = |g: u8| (!groups.is_empty()).then(|| g as usize % groups.len());
        match call {
            Call::Register { kind, requires } => {
                let requires = requires.clone();
                let registered = runtime.register_factory(kind, move || {
                    Box::new(Scripted {
                        requires: requires.clone(),
                        load: 0.0,
                    })
                });
                if let Err(e) = registered {
                    typed(e);
                }
            }
            Call::Start => {
                if let Err(e) = runtime.start() {
                    typed(e);
                }
            }
            Call::Spawn(config) => {
                let spawned = ReplicaGroup::spawn(
                    &runtime,
                    &config.kind,
                    ReplicaGroupConfig {
                        replica_count: config.replica_count,
                        group_seed: config.group_seed,
                        lb_strategy: Strategy::ALL[config.strategy as usize % Strategy::ALL.len()],
                        host_config: DaemonHostConfig {
                            circuit_failure_threshold: config.threshold,
                            circuit_recovery: config.recovery,
                            ..DaemonHostConfig::default()
                        },
                    },
                );
                match spawned {
                    Ok(group) => {
                        assert_eq!(group.replica_count(), config.replica_count);
                        let router = group.router();
                        groups.push((group, router));
                    }
                    Err(e) => {
                        if config.replica_count == 0 && runtime.is_ready() {
                            assert!(
                                matches!(e, GroupError::InvalidConfig(_)),
                                "replica_count 0 must be InvalidConfig, got {e:?}"
                            );
                        }
                        typed(e);
                    }
                }
            }
            Call::Route {
                group,
                context: c,
                via_router,
            } => {
                let Some(g) = pick(*group) else { continue };
                let ctx = context(c);
                let (group, router) = &mut groups[g];
                let routed = if *via_router {
                    router.route(&ctx)
                } else {
                    group.route_event(&ctx)
                };
                match routed {
                    Ok(origin) => assert!(group
                        .replicas()
                        .iter()
                        .any(|m| m.origin_hash == origin && m.healthy)),
                    Err(e) => typed(e),
                }
            }
            Call::Dispatch {
                group,
                context: c,
                payload,
            } => {
                let Some(g) = pick(*group) else { continue };
                let event = Event::new(payload.clone());
                match groups[g].0.dispatch(&context(c), &event) {
                    Ok(outputs) => assert_eq!(outputs, vec![Bytes::copy_from_slice(payload)]),
                    Err(e) => typed(e),
                }
            }
            Call::Deliver { origin, payload } => {
                check_delivery(
                    runtime.deliver(*origin, &Event::new(payload.clone())),
                    payload,
                );
            }
            Call::DeliverToMember {
                group,
                index,
                payload,
            } => {
                let Some(g) = pick(*group) else { continue };
                let members = groups[g].0.replicas();
                if members.is_empty() {
                    continue;
                }
                let origin = members[*index as usize % members.len()].origin_hash;
                check_delivery(
                    runtime.deliver(origin, &Event::new(payload.clone())),
                    payload,
                );
            }
            Call::ScaleTo { group, count } => {
                let Some(g) = pick(*group) else { continue };
                match groups[g].0.scale_to(*count) {
                    Ok(()) => assert_eq!(groups[g].0.replica_count(), *count),
                    Err(e) => typed(e),
                }
            }
            Call::AddNode(n) => {
                if let Err(e) = runtime.add_node(node(n)) {
                    typed(e);
                }
            }
            Call::NodeFailed(id) => {
                if let Err(e) = runtime.node_failed(*id) {
                    typed(e);
                }
            }
            Call::NodeRecovered(id) => {
                if let Err(e) = runtime.node_recovered(*id) {
                    typed(e);
                }
            }
            Call::OnNodeFailure { group, node } => {
                let Some(g) = pick(*group) else { continue };
                match groups[g].0.on_node_failure(*node) {
                    Ok(replaced) => assert!(replaced.windows(2).all(|w| w[0] < w[1])),
                    Err(e) => typed(e),
                }
            }
            Call::OnNodeRecovery { group, node } => {
                let Some(g) = pick(*group) else { continue };
                groups[g].0.on_node_recovery(*node);
            }
            Call::Digest => {
                if let Err(e) = runtime.roster_digest() {
                    typed(e);
                }
            }
            Call::Shutdown => runtime.shutdown(),
        }
        for (group, _) in &groups {
            check_group(group);
        }
    }
    runtime.shutdown();
}
