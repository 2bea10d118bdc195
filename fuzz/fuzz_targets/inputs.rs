//! Arbitrary values at the public API: node ids, zones, tags and weights;
//! kind names; group configs (any count, seed, strategy, threshold, recovery
//! window); routing contexts (keys, sessions, zones, tags); origin hashes and
//! payloads; in any order, on a runtime or a cluster-mode one. Nothing may
//! panic: every refusal is a typed error, and whatever succeeds is
//! consistent (a route returns a healthy member, a delivery the daemon's
//! outputs, `replicas()` is ordered by index on distinct nodes).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use replica_router::*;

const MAX_CALLS: usize = 48;
const MAX_NODES: usize = 16;

#[derive(Arbitrary, Debug)]
struct Node {
    id: u64,
    zone: Option<String>,
    tags: Vec<String>,
    weight: Option<u32>,
}

#[derive(Arbitrary, Debug)]
struct Context {
    key: Option<Vec<u8>>,
    session: Option<u64>,
    zone: Option<String>,
    tags: Vec<String>,
}

#[derive(Arbitrary, Debug)]
struct Config {
    kind: String,
    replica_count: u8,
    group_seed: [u8; 32],
    strategy: u8,
    threshold: u32,
    recovery: Duration,
}

#[derive(Arbitrary, Debug)]
enum Call {
    Register {
        kind: String,
        requires: Vec<String>,
    },
    Start,
    Spawn(Config),
    Route {
        group: u8,
        context: Context,
        via_router: bool,
    },
    Dispatch {
        group: u8,
        context: Context,
        payload: Vec<u8>,
    },
    Deliver {
        origin: u64,
        payload: Vec<u8>,
    },
    DeliverToMember {
        group: u8,
        index: u8,
        payload: Vec<u8>,
    },
    ScaleTo {
        group: u8,
        count: u8,
    },
    AddNode(Node),
    NodeFailed(u64),
    NodeRecovered(u64),
    OnNodeFailure {
        group: u8,
        node: u64,
    },
    OnNodeRecovery {
        group: u8,
        node: u64,
    },
    Digest,
    Shutdown,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Cluster mode: this process is that node.
    local: Option<u64>,
    nodes: Vec<Node>,
    calls: Vec<Call>,
}

/// Echoes its payload, fails a payload starting with 0, reports the last
/// payload's first 8 bytes as its load (any f64: NaN, infinities, negative).
struct Daemon {
    requires: Vec<String>,
    load: f64,
}

impl MeshDaemon for Daemon {
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

fuzz_target!(|input: Input| {
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
                    Box::new(Daemon {
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
});
