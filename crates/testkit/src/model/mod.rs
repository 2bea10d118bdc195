//! Model-based testing: an interpreter that applies the same [`Op`]s to a
//! real [`DaemonRuntime`] and to a plain reference model of the guarantees
//! in the crate docs, and compares them after every operation.
//!
//! Compared after each operation, for every group: its members (index,
//! origin hash, entity id, node, health), `health`, `replica_count`,
//! `healthy_count` and `term`; and the outcome of the operation itself:
//! errors by variant, the number of replicas re-placed or re-marked, every
//! delivery's outcome (outputs, daemon failure, panic, unknown origin, open
//! circuit, shutdown). A route must return a member the model allows:
//! healthy, circuit closed, on a node carrying the required tags, and in the
//! preferred zone whenever such a member exists; keyed consistent-hash
//! routes must be sticky.
//!
//! Driven by `fuzz/` (cargo-fuzz, target `ops`) and by `tests/model.rs` on
//! stable. Scenarios are [`arbitrary`]-built, so any byte string is a valid
//! one:
//!
//! ```
//! use replica_router_testkit::model::{run, Scenario};
//! let mut bytes = arbitrary::Unstructured::new(&[7; 256]);
//! let scenario: Scenario = bytes.arbitrary().unwrap();
//! run(&scenario).unwrap();
//! ```

mod ops;
mod reference;

use std::fmt;
use std::time::Duration;

use replica_router::{
    DaemonHostConfig, DaemonRuntime, DeliverError, Event, MemberInfo, ReplicaGroup,
    ReplicaGroupConfig, Router, Strategy,
};

use crate::support::{
    quiet_deliberate_panics, Flaky, NeedsTag, PanicsIn, Volatile, DELIBERATE_PANIC,
};
pub use ops::{ContextSpec, Kind, NodeSpec, Op, Payload, Scenario, Target, Weight};
use reference::{Delivered, Model, Reaction};

/// Operations in a scenario built from bytes; [`run`] applies at most these
/// many of a scenario built by hand, to bound a run.
pub const MAX_OPS: usize = 64;

/// Initial nodes in a scenario built from bytes; [`Interpreter::new`] uses at
/// most these many.
pub const MAX_NODES: usize = 10;

/// Where the runtime and the reference model disagreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The operation's position in the scenario.
    pub step: usize,
    /// The operation.
    pub op: String,
    /// What differed.
    pub what: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({}): {}", self.step, self.op, self.what)
    }
}

impl std::error::Error for Divergence {}

/// Runs `scenario` on a fresh runtime and model; the first divergence, if any.
pub fn run(scenario: &Scenario) -> Result<(), Divergence> {
    let mut interpreter = Interpreter::new(&scenario.nodes);
    for op in scenario.ops.iter().take(MAX_OPS) {
        interpreter.apply(op)?;
    }
    Ok(())
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            // Never `fail`, `panic` or any other word `Flaky` acts on.
            Payload::Echo(data) => [&b"="[..], data].concat(),
            Payload::Fail => b"fail".to_vec(),
            Payload::Panic => b"panic".to_vec(),
        }
    }

    fn reaction(&self) -> Reaction {
        match self {
            Payload::Echo(_) => Reaction::Echo,
            Payload::Fail => Reaction::Fail,
            Payload::Panic => Reaction::Panic,
        }
    }
}

/// A spawned group's handles.
#[derive(Debug)]
struct Handle {
    group: ReplicaGroup,
    router: Router,
}

/// Applies operations to a runtime and to the reference model side by side.
#[derive(Debug)]
pub struct Interpreter {
    runtime: DaemonRuntime,
    handles: Vec<Handle>,
    model: Model,
    step: usize,
}

fn same_variant<E>(a: &E, b: &E) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl Interpreter {
    /// A started runtime over `nodes` (the first [`MAX_NODES`]), with the
    /// kinds `plain`, `tagged` and `broken` registered, and its model.
    pub fn new(nodes: &[NodeSpec]) -> Self {
        quiet_deliberate_panics();
        let nodes = &nodes[..nodes.len().min(MAX_NODES)];
        let runtime = DaemonRuntime::new(nodes.iter().map(NodeSpec::info));
        runtime
            .register_factory(Kind::Plain.name(), || Box::new(Flaky::default()))
            .expect("a fresh runtime registers a new kind");
        let tag = Kind::Tagged
            .required_tag()
            .expect("the tagged kind needs a tag");
        runtime
            .register_factory(Kind::Tagged.name(), move || {
                Box::new(NeedsTag::with_daemon(tag, Flaky::default()))
            })
            .expect("a fresh runtime registers a new kind");
        runtime
            .register_factory(Kind::Broken.name(), || {
                std::panic::panic_any(DELIBERATE_PANIC)
            })
            .expect("a fresh runtime registers a new kind");
        runtime
            .register_factory(Kind::Volatile.name(), || {
                Box::new(Volatile::new(PanicsIn::LoadAndDrop))
            })
            .expect("a fresh runtime registers a new kind");
        runtime
            .register_factory(Kind::Unplaceable.name(), || {
                Box::new(Volatile::new(PanicsIn::Requirements))
            })
            .expect("a fresh runtime registers a new kind");
        runtime.start().expect("a fresh runtime starts");
        let model = Model::new(
            nodes
                .iter()
                .map(|n| reference::Node {
                    id: ops::node_id(n.id),
                    zone: n.zone_name().map(str::to_owned),
                    tags: n.tag_names().into_iter().map(str::to_owned).collect(),
                    weight: n.info().weight(),
                    alive: true,
                })
                .collect(),
        );
        Interpreter {
            runtime,
            handles: Vec::new(),
            model,
            step: 0,
        }
    }

    /// Applies `op` to both, then compares every group.
    pub fn apply(&mut self, op: &Op) -> Result<(), Divergence> {
        let outcome = self.apply_op(op).and_then(|()| self.compare_groups());
        self.step += 1;
        outcome.map_err(|what| Divergence {
            step: self.step - 1,
            op: format!("{op:?}"),
            what: format!("{what}\n{}", self.model.describe()),
        })
    }

    fn group(&self, group: u8) -> Option<usize> {
        (!self.handles.is_empty()).then(|| group as usize % self.handles.len())
    }

    fn apply_op(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Spawn {
                kind,
                seed,
                count,
                strategy,
                threshold,
            } => self.spawn(
                *kind,
                ops::seed(*seed),
                count % 7,
                ops::strategy(*strategy),
                *threshold,
            ),
            Op::ScaleTo { group, count } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                let real = self.handles[g].group.scale_to(count % 7);
                let expected = self.model.scale_to(g, count % 7);
                match (&real, &expected) {
                    (Ok(()), Ok(())) => Ok(()),
                    (Err(a), Err(b)) if same_variant(a, b) => Ok(()),
                    _ => Err(format!("scale_to: runtime {real:?}, model {expected:?}")),
                }
            }
            Op::AddNode(spec) => {
                let real = self.runtime.add_node(spec.info());
                let expected = self.model.add_node(reference::Node {
                    id: ops::node_id(spec.id),
                    zone: spec.zone_name().map(str::to_owned),
                    tags: spec.tag_names().into_iter().map(str::to_owned).collect(),
                    weight: spec.info().weight(),
                    alive: true,
                });
                agree("add_node", real, expected)
            }
            Op::NodeFailed(id) => {
                let id = ops::node_id(*id);
                agree(
                    "node_failed",
                    self.runtime.node_failed(id),
                    self.model.node_failed(id),
                )
            }
            Op::NodeRecovered(id) => {
                let id = ops::node_id(*id);
                let real = self.runtime.node_recovered(id);
                agree("node_recovered", real, self.model.node_recovered(id))
            }
            Op::GroupNodeFailure { group, node } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                let node = ops::node_id(*node);
                let real = self.handles[g].group.on_node_failure(node);
                agree(
                    "on_node_failure",
                    real,
                    self.model.group_node_failure(g, node),
                )
            }
            Op::GroupNodeRecovery { group, node } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                let node = ops::node_id(*node);
                self.handles[g].group.on_node_recovery(node);
                self.model.group_node_recovery(g, node);
                Ok(())
            }
            Op::Route {
                group,
                context,
                via_router,
            } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                self.route(g, context, *via_router).map(drop)
            }
            Op::Deliver { target, payload } => self.deliver(target, payload),
            Op::Remove { group } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                let real = self.handles[g].group.remove();
                agree("remove", real, self.model.remove(g))
            }
            Op::Shutdown => {
                self.runtime.shutdown();
                self.model.shutdown();
                Ok(())
            }
        }
    }

    fn spawn(
        &mut self,
        kind: Kind,
        seed: [u8; 32],
        count: u8,
        strategy: Strategy,
        threshold: u8,
    ) -> Result<(), String> {
        let threshold = 1 + u32::from(threshold % 5);
        let config = ReplicaGroupConfig {
            replica_count: count,
            group_seed: seed,
            lb_strategy: strategy,
            host_config: DaemonHostConfig {
                circuit_failure_threshold: threshold,
                // Outlasts any run: an open circuit stays open.
                circuit_recovery: Duration::from_secs(3600),
                ..DaemonHostConfig::default()
            },
        };
        let real = ReplicaGroup::spawn(&self.runtime, kind.name(), config);
        let expected = self.model.spawn(kind, seed, count, strategy, threshold);
        match (real, expected) {
            (Ok(group), Ok(())) => {
                let router = group.router();
                self.handles.push(Handle { group, router });
                Ok(())
            }
            (Err(a), Err(b)) if same_variant(&a, &b) => Ok(()),
            (real, expected) => Err(format!(
                "spawn: runtime {:?}, model {expected:?}",
                real.map(|_| ())
            )),
        }
    }

    /// Routes on group `g` and checks the member against the model.
    fn route(
        &mut self,
        g: usize,
        spec: &ContextSpec,
        via_router: bool,
    ) -> Result<Option<u64>, String> {
        let ctx = spec.context();
        let handle = &mut self.handles[g];
        let real = if via_router {
            handle.router.route(&ctx)
        } else {
            handle.group.route_event(&ctx)
        };
        let allowed = self.model.routable(g, &spec.tag_names(), spec.zone_name());
        match (&real, &allowed) {
            (Ok(origin), Ok(members)) if members.contains(origin) => {}
            (Err(a), Err(b)) if same_variant(a, b) => {}
            _ => {
                return Err(format!(
                    "route ({ctx:?}, {:?}): runtime {real:?}, model allows {allowed:?}",
                    self.model.groups[g].strategy
                ))
            }
        }
        let keyed = ctx.routing_key_hash().is_some()
            && matches!(
                self.model.groups[g].strategy,
                Strategy::ConsistentHash | Strategy::Adaptive
            );
        if keyed {
            let again = if via_router {
                handle.group.route_event(&ctx)
            } else {
                handle.router.route(&ctx)
            };
            if again != real {
                return Err(format!(
                    "keyed route not sticky ({ctx:?}): {real:?}, then {again:?}"
                ));
            }
        }
        Ok(real.ok())
    }

    fn deliver(&mut self, target: &Target, payload: &Payload) -> Result<(), String> {
        let origin = match target {
            Target::Member { group, index } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                let slots = &self.model.groups[g].slots;
                if slots.is_empty() {
                    return Ok(());
                }
                slots[*index as usize % slots.len()].origin
            }
            Target::Routed { group, context } => {
                let Some(g) = self.group(*group) else {
                    return Ok(());
                };
                match self.route(g, context, false)? {
                    Some(origin) => origin,
                    None => return Ok(()),
                }
            }
            Target::Identity { seed, index } => self.model.origin(ops::seed(*seed), index % 8),
            Target::Unknown(origin) => *origin,
        };
        let bytes = payload.bytes();
        let real = self.runtime.deliver(origin, &Event::new(bytes.clone()));
        let expected = self.model.deliver(origin, &bytes, payload.reaction());
        let same = match (&real, &expected) {
            (Ok(outputs), Ok(Delivered::Outputs(data))) => {
                outputs.len() == 1 && outputs[0][..] == data[..]
            }
            (Err(DeliverError::Daemon { origin_hash, .. }), Ok(Delivered::Failed))
            | (Err(DeliverError::Panicked { origin_hash, .. }), Ok(Delivered::Panicked)) => {
                *origin_hash == origin
            }
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        if same {
            Ok(())
        } else {
            Err(format!(
                "deliver to {origin:#018x}: runtime {real:?}, model {expected:?}"
            ))
        }
    }

    /// Every group's members, health, counts and term, against the model.
    fn compare_groups(&mut self) -> Result<(), String> {
        if self.runtime.is_ready() == self.model.shut_down {
            return Err(format!("is_ready() is {}", self.runtime.is_ready()));
        }
        for (g, handle) in self.handles.iter().enumerate() {
            let real = handle.group.replicas();
            let expected = &self.model.groups[g];
            let shown = |m: &MemberInfo| (m.index, m.origin_hash, m.node_id, m.healthy);
            let real_members: Vec<_> = real.iter().map(shown).collect();
            let model_members: Vec<_> = expected
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u8, s.origin, s.node, s.healthy))
                .collect();
            if real_members != model_members {
                return Err(format!(
                    "group {g} members (index, origin, node, healthy): runtime {real_members:x?}, model {model_members:x?}"
                ));
            }
            let seed = expected.seed;
            for m in &real {
                if m.entity_id_bytes != self.model.entity_id(seed, m.index) {
                    return Err(format!(
                        "group {g} member {} has a wrong entity id",
                        m.index
                    ));
                }
            }
            let expected = &self.model.groups[g];
            let healthy = expected.slots.iter().filter(|s| s.healthy).count() as u8;
            let views = (
                handle.group.health(),
                handle.group.replica_count(),
                handle.group.healthy_count(),
                handle.group.term(),
            );
            let wanted = (
                expected.health(),
                expected.slots.len() as u8,
                healthy,
                expected.term,
            );
            if views != wanted {
                return Err(format!(
                    "group {g} (health, replica_count, healthy_count, term): runtime {views:?}, model {wanted:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Compares a runtime call's result with the model's.
fn agree<T: PartialEq + fmt::Debug, E: PartialEq + fmt::Debug>(
    what: &str,
    real: Result<T, E>,
    expected: Result<T, E>,
) -> Result<(), String> {
    if real == expected {
        Ok(())
    } else {
        Err(format!("{what}: runtime {real:?}, model {expected:?}"))
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        self.runtime.shutdown();
    }
}
